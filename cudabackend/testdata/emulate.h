// A CPU emulation of what gochat's CUDA kernels use, so that the tests can run them where
// there is no GPU (emulate_test.go): a block's threads are OS threads, __syncthreads and
// the warp-wide operations are barriers, and shared memory is the process's own, since
// blocks run one after another. Compiled as C++20 with CUDA_EMULATION defined, under which
// attention.cu takes its warp matrix products from here (one exchange of the warp's
// fragments) instead of PTX.
#pragma once
#include <algorithm>
#include <array>
#include <atomic>
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <thread>
#include <type_traits>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static // blocks run one at a time: a block's threads share statics

struct dim3 {
	unsigned x = 1, y = 1, z = 1;
};
struct float2 {
	float x, y;
};
struct alignas(16) float4 {
	float x, y, z, w;
};
struct char4 {
	signed char x, y, z, w;
};
struct alignas(8) ushort4 {
	unsigned short x, y, z, w;
};
struct alignas(8) uint2 {
	unsigned x, y;
};
inline float2 make_float2(float x, float y) { return {x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline ushort4 make_ushort4(unsigned short x, unsigned short y, unsigned short z, unsigned short w) { return {x, y, z, w}; }
inline uint2 make_uint2(unsigned x, unsigned y) { return {x, y}; }

namespace emu {

// Block is the block running now.
struct Block {
	dim3 dim, grid;
	std::unique_ptr<std::barrier<>> all;                // __syncthreads
	std::vector<std::unique_ptr<std::barrier<>>> warps; // each warp's
	std::vector<uint64_t> slots;                        // a thread's part of a warp-wide exchange
	std::vector<float> frags;                           // each warp's matrices in a warp product
};
inline Block block;
inline thread_local dim3 threadIndex, blockIndex;
inline unsigned char* dynamicShared; // the running block's, of the launch's size

inline int lane() { return threadIndex.x % 32; }
inline int warpBase() { return threadIndex.x / 32 * 32; }
inline std::barrier<>& warp() { return *block.warps[threadIndex.x / 32]; }

// exchange returns v of lane src of the calling thread's warp, which all of it calls.
template <typename T> T exchange(T v, int src) {
	static_assert(sizeof(T) <= 8, "an exchanged value fits 8 bytes");
	uint64_t bits = 0;
	memcpy(&bits, &v, sizeof v);
	block.slots[threadIndex.x] = bits;
	warp().arrive_and_wait();
	uint64_t got = block.slots[warpBase() + (src & 31)];
	warp().arrive_and_wait();
	T r;
	memcpy(&r, &got, sizeof r);
	return r;
}

// laneAddresses returns the address each lane of the calling thread's warp passed, as a
// warp-wide load that gathers rows its lanes name (ldmatrix) sees them; all of it calls.
template <typename T> std::array<const T*, 32> laneAddresses(const T* p) {
	block.slots[threadIndex.x] = (uint64_t)(uintptr_t)p;
	warp().arrive_and_wait();
	std::array<const T*, 32> all;
	for (int i = 0; i < 32; i++) all[i] = (const T*)(uintptr_t)block.slots[warpBase() + i];
	warp().arrive_and_wait();
	return all;
}

// warpProduct is a warp's C += A·B for a 16×8 C from fragments of A (16×K) and B (K×8):
// each lane writes the elements its fragments hold into the warp's matrices (unpackA
// writes A[r][k] at a[r*K + k], unpackB B[k][n] at b[k*8 + n]), then computes its four
// elements of C, as PTX's m16n8 accumulators lie (g = lane/4, t = lane%4: C[g][2t],
// C[g][2t+1], C[g+8][2t], C[g+8][2t+1]).
template <int K, typename UnpackA, typename UnpackB>
void warpProduct(float c[4], UnpackA unpackA, UnpackB unpackB) {
	float* a = &block.frags[threadIndex.x / 32 * (16 * 16 + 16 * 8)];
	float* b = a + 16 * K;
	int l = lane(), g = l / 4, t = l % 4;
	unpackA(a, l);
	unpackB(b, l);
	warp().arrive_and_wait();
	for (int k = 0; k < K; k++) {
		c[0] += a[g * K + k] * b[k * 8 + 2 * t];
		c[1] += a[g * K + k] * b[k * 8 + 2 * t + 1];
		c[2] += a[(g + 8) * K + k] * b[k * 8 + 2 * t];
		c[3] += a[(g + 8) * K + k] * b[k * 8 + 2 * t + 1];
	}
	warp().arrive_and_wait(); // every lane has read the matrices before the next product writes them
}

// guard is the bytes past every buffer and past a block's shared memory, filled with
// guardByte and checked after the kernels ran: a kernel that writes past what the engine
// gives it fails its test.
constexpr size_t guard = 4096;
constexpr unsigned char guardByte = 0xa5;

inline void* allocate(size_t bytes) {
	void* p = nullptr;
	if (posix_memalign(&p, 256, bytes + guard) != 0) {
		fprintf(stderr, "no memory for %zu bytes\n", bytes);
		exit(1);
	}
	memset((unsigned char*)p + bytes, guardByte, guard);
	return p;
}

inline void checkGuard(const void* p, size_t bytes, const char* what) {
	const unsigned char* g = (const unsigned char*)p + bytes;
	for (size_t i = 0; i < guard; i++)
		if (g[i] != guardByte) {
			fprintf(stderr, "a kernel wrote past the %zu bytes of %s (at byte %zu)\n", bytes, what, bytes + i);
			exit(1);
		}
}

// launch runs kernel on each thread of each block of grid (one-dimensional blocks), a
// block at a time, with shared bytes of dynamic shared memory.
inline void launch(dim3 grid, dim3 dim, size_t shared, const std::function<void()>& kernel) {
	block.dim = dim;
	block.grid = grid;
	unsigned n = dim.x;
	dynamicShared = (unsigned char*)allocate(shared);
	for (unsigned by = 0; by < grid.y; by++)
		for (unsigned bx = 0; bx < grid.x; bx++) {
			block.all = std::make_unique<std::barrier<>>(n);
			block.warps.clear();
			for (unsigned w = 0; w < (n + 31) / 32; w++) block.warps.push_back(std::make_unique<std::barrier<>>(std::min(32u, n - 32 * w)));
			block.slots.assign(n, 0);
			block.frags.assign((n + 31) / 32 * (16 * 16 + 16 * 8), 0.0f);
			std::vector<std::thread> threads;
			for (unsigned t = 0; t < n; t++)
				threads.emplace_back([=, &kernel] {
					threadIndex = {t, 0, 0};
					blockIndex = {bx, by, 0};
					kernel();
					block.warps[t / 32]->arrive_and_drop(); // an exited thread no longer holds its warp or block
					block.all->arrive_and_drop();
				});
			for (auto& th : threads) th.join();
			checkGuard(dynamicShared, shared, "a block's shared memory");
		}
	free(dynamicShared);
}

// load reads bytes bytes from path into memory aligned as a GPU's allocations are, with a
// guard after them; save checks the guard and writes them back.
inline void* load(const char* path, size_t bytes) {
	void* p = allocate(bytes);
	FILE* f = fopen(path, "rb");
	if (!f || fread(p, 1, bytes, f) != bytes) {
		fprintf(stderr, "cannot read %s\n", path);
		exit(1);
	}
	fclose(f);
	return p;
}
inline void save(const char* path, const void* p, size_t bytes) {
	checkGuard(p, bytes, path);
	FILE* f = fopen(path, "wb");
	if (!f || fwrite(p, 1, bytes, f) != bytes) {
		fprintf(stderr, "cannot write %s\n", path);
		exit(1);
	}
	fclose(f);
}

} // namespace emu

#define threadIdx (emu::threadIndex)
#define blockIdx (emu::blockIndex)
#define blockDim (emu::block.dim)
#define gridDim (emu::block.grid)

inline void __syncthreads() { emu::block.all->arrive_and_wait(); }
inline void __syncwarp(unsigned = 0xffffffffu) { emu::warp().arrive_and_wait(); }
template <typename T> T __shfl_sync(unsigned, T v, int src, int = 32) { return emu::exchange(v, src); }
template <typename T> T __shfl_xor_sync(unsigned, T v, int mask, int = 32) { return emu::exchange(v, emu::lane() ^ mask); }
inline unsigned __float_as_uint(float f) {
	unsigned u;
	memcpy(&u, &f, 4);
	return u;
}
inline float __uint_as_float(unsigned u) {
	float f;
	memcpy(&f, &u, 4);
	return f;
}
inline int __float_as_int(float f) { return (int)__float_as_uint(f); }
inline float __int_as_float(int i) { return __uint_as_float((unsigned)i); }
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline float atomicAdd(float* p, float v) { return std::atomic_ref<float>(*p).fetch_add(v); }
inline double atomicAdd(double* p, double v) { return std::atomic_ref<double>(*p).fetch_add(v); }
template <typename A, typename B> std::common_type_t<A, B> min(A a, B b) { return a < b ? a : b; }
template <typename A, typename B> std::common_type_t<A, B> max(A a, B b) { return a > b ? a : b; }
