// TETHER_HOST_DEVICE: marks an inline function that both back ends call, compiled for the host
// by g++ and for the host and the GPU by nvcc (core/philox.h, core/scalar_math.h,
// core/nn_geometry.h, core/random_fill.h).
#pragma once

#ifdef __CUDACC__
#define TETHER_HOST_DEVICE __host__ __device__
#else
#define TETHER_HOST_DEVICE
#endif
