// What NVRTC declares for a CUDA source without any include, declared for clang: the
// attributes, the vector types and the intrinsics and math functions kernels.cu and
// attention.cu use. TestKernelsCompile compiles the sources with it to PTX on machines
// with no CUDA toolkit. Add a declaration here when a kernel uses something new.
#define __global__ __attribute__((global))
#define __device__ __attribute__((device))
#define __host__ __attribute__((host))
#define __shared__ __attribute__((shared))
#define __forceinline__ __inline__ __attribute__((always_inline))
#define __launch_bounds__(...) __attribute__((launch_bounds(__VA_ARGS__)))
#include "__clang_cuda_builtin_vars.h"

typedef unsigned long size_t;

struct __attribute__((aligned(8))) float2 { float x, y; };
struct __attribute__((aligned(16))) float4 { float x, y, z, w; };
struct __attribute__((aligned(4))) char4 { signed char x, y, z, w; };
struct __attribute__((aligned(8))) ushort4 { unsigned short x, y, z, w; };
struct __attribute__((aligned(8))) uint2 { unsigned x, y; };
__device__ float2 make_float2(float, float);
__device__ float4 make_float4(float, float, float, float);
__device__ ushort4 make_ushort4(unsigned short, unsigned short, unsigned short, unsigned short);
__device__ uint2 make_uint2(unsigned, unsigned);

__device__ void __syncthreads();
__device__ void __syncwarp(unsigned mask = 0xffffffffu);
__device__ float __shfl_sync(unsigned mask, float v, int lane, int width = 32);
__device__ int __shfl_sync(unsigned mask, int v, int lane, int width = 32);
__device__ float __shfl_xor_sync(unsigned mask, float v, int lane, int width = 32);
__device__ int __shfl_xor_sync(unsigned mask, int v, int lane, int width = 32);
__device__ unsigned __shfl_xor_sync(unsigned mask, unsigned v, int lane, int width = 32);
__device__ double __shfl_xor_sync(unsigned mask, double v, int lane, int width = 32);
__device__ float atomicAdd(float* p, float v);
__device__ double atomicAdd(double* p, double v);

__device__ unsigned __float_as_uint(float);
__device__ float __uint_as_float(unsigned);
__device__ int __float_as_int(float);
__device__ float __int_as_float(int);

__device__ float expf(float);
__device__ float exp2f(float);
__device__ float logf(float);
__device__ float sqrtf(float);
__device__ float rsqrtf(float);
__device__ float tanhf(float);
__device__ float fabsf(float);
__device__ float fmaxf(float, float);
__device__ float fminf(float, float);
__device__ float fmaf(float, float, float);
__device__ double sqrt(double);
template <typename T> __device__ T min(T a, T b) { return a < b ? a : b; }
template <typename T> __device__ T max(T a, T b) { return a > b ? a : b; }
