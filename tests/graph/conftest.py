import pytest


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """Every test gets its own $PYG_SPHERE_CACHE: nothing is written into the
    user's cache, and no test sees another's entries."""
    monkeypatch.setenv('PYG_SPHERE_CACHE', str(tmp_path / 'pyg_sphere_cache'))
