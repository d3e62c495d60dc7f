"""Build the DeepSphere graph of every built-in sampling and summarise it.

    python examples/build_graphs.py
"""
import time

import torch
from torch_geometric.transforms import Compose

from pyg_sphere.samplings import (cubed, equiangular, gauss_legendre, healpix, icosahedral,
                                  pixel_area, points)
from pyg_sphere.transforms import SphereKNNGraph, SphereLaplacianLambdaMax


def main() -> None:
    transform = Compose([SphereKNNGraph(k=8), SphereLaplacianLambdaMax('sym')])
    gen = torch.Generator().manual_seed(0)
    stations = points(torch.rand(10_000, generator=gen) * 360 - 180,
                      torch.rad2deg(torch.asin(torch.rand(10_000, generator=gen) * 2 - 1)),
                      degrees=True)
    samplings = [healpix(64), healpix(64, indexes=torch.arange(4096)), equiangular(64),
                 equiangular(64, poles='north'), icosahedral(5), cubed(5),
                 gauss_legendre(64), gauss_legendre(64, reduced=True), stations]
    print(f'{"sampling":<48} {"pixels":>8} {"edges":>9} {"t":>10} {"lambda_max":>10} '
          f'{"area":>7} {"time":>6}')
    for data in samplings:
        start = time.perf_counter()
        data = transform(data)
        seconds = time.perf_counter() - start
        name = repr(data.sampling) + (' partial' if 'ipix' in data else '')
        print(f'{name:<48} {data.num_nodes:>8} {data.num_edges:>9} {data.kernel_width:>10.3e} '
              f'{data.lambda_max:>10.4f} {float(pixel_area(data).sum()):>7.4f} '
              f'{seconds:>5.2f}s')


if __name__ == '__main__':
    main()
