#!/usr/bin/env bash
# One-shot GPU check (run on a CUDA machine from the repo root, healpy wheels in .whl/).
set -o pipefail
OUT=${OUT:-/tmp/gpu_out}; mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD || exit 1
fi
export PYTHONPATH=${PYTHONPATH:-$PWD} PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c "import torch, torch_geometric, healpy; print('torch', torch.__version__, 'pyg', torch_geometric.__version__, 'healpy', healpy.__version__)"
echo '== conv benchmark (cuda) =='
timeout 200 python3 benchmarks/bench_conv.py --device cuda --nside 32 64 128 --repeat 5 \
  --json "$OUT/conv_cuda.json" 2>&1 | tee "$OUT/conv_cuda.txt"
echo '== pooling CUDA tests =='
timeout 60 python3 -m pytest -q -p no:cacheprovider tests/nn/test_pool.py -k cuda 2>&1 | tail -3
echo '== pyg-sphere train cosmology --device cuda (simulated data stand-in) =='
timeout 120 python3 - <<'PY' 2>&1 | tee "$OUT/train_cuda.txt"
import tempfile, time
from pathlib import Path
from pyg_sphere import cli
from pyg_sphere.simulate import lensing
from tests.conftest import fake_map, fake_spectra
lensing.compute_spectra, lensing.simulate_map = fake_spectra, fake_map
tmp = Path(tempfile.mkdtemp())
t = time.perf_counter()
rc = cli.main(['train', 'cosmology', '--device', 'cuda', '--out', str(tmp / 'run'),
               '--data-root', str(tmp / 'data'), '--n-maps', '20', '--epochs', '3',
               '--workers', '1', '--no-progress'])
print('exit', rc, f'{time.perf_counter() - t:.1f} s')
PY
