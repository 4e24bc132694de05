// The float32 kernels of gochat's layers and optimizers, for NVIDIA GPUs. NVRTC compiles
// this file when the engine starts (device.go); each kernel computes what the generic Go
// kernel of the same name in layers/ or optimizers/ does, and the tests compare the two.
//
// Conventions: sizes are long long, scalars float, ids and targets long long (Go's int).
// Elementwise kernels loop with a grid stride; row kernels take one block per row and
// reduce with blockSum/blockMax, which need blockDim.x to be a multiple of 32, or a warp
// per row (or chunk of one) and reduce with warpReduce.

typedef long long i64;

#define NEG_INF __int_as_float(0xff800000)

#define GRID_STRIDE(i, n) for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < (n); i += (i64)gridDim.x * blockDim.x)

// Sum and Max combine two partial results of a reduction.
struct Sum {
	__device__ static float identity() { return 0.0f; }
	__device__ static float apply(float a, float b) { return a + b; }
};
struct Max {
	__device__ static float identity() { return NEG_INF; }
	__device__ static float apply(float a, float b) { return fmaxf(a, b); }
};

template <typename Op> __device__ float warpReduce(float v) {
	for (int o = 16; o > 0; o >>= 1) v = Op::apply(v, __shfl_xor_sync(0xffffffffu, v, o));
	return v;
}

// blockReduce returns the reduction of v over the block to every thread.
template <typename Op> __device__ float blockReduce(float v) {
	__shared__ float part[32];
	int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
	v = warpReduce<Op>(v);
	__syncthreads();
	if (lane == 0) part[warp] = v;
	__syncthreads();
	v = warpReduce<Op>(threadIdx.x < warps ? part[threadIdx.x] : Op::identity());
	__syncthreads();
	if (threadIdx.x == 0) part[0] = v;
	__syncthreads();
	return part[0];
}

__device__ float blockSum(float v) { return blockReduce<Sum>(v); }
__device__ float blockMax(float v) { return blockReduce<Max>(v); }

extern "C" {

__global__ void scale(float* x, i64 n, float a) {
	GRID_STRIDE(i, n) x[i] *= a;
}

__global__ void add(float* y, const float* a, const float* b, i64 n) {
	GRID_STRIDE(i, n) y[i] = a[i] + b[i];
}

__global__ void axpy(float* y, const float* x, i64 n, float a) {
	GRID_STRIDE(i, n) y[i] += a * x[i];
}

__global__ void relu2Forward(float* y, const float* x, i64 n) {
	GRID_STRIDE(i, n) {
		float v = fmaxf(x[i], 0.0f);
		y[i] = v * v;
	}
}

__global__ void relu2Backward(float* dx, const float* y, const float* dy, i64 n) {
	GRID_STRIDE(i, n) dx[i] = 2.0f * sqrtf(y[i]) * dy[i];
}

__global__ void softcapForward(float* y, const float* x, i64 n, float cap) {
	GRID_STRIDE(i, n) y[i] = cap * tanhf(x[i] / cap);
}

__global__ void softcapBackward(float* dx, const float* y, const float* dy, i64 n, float cap) {
	GRID_STRIDE(i, n) {
		float t = y[i] / cap;
		dx[i] = (1.0f - t * t) * dy[i];
	}
}

__global__ void embeddingForward(float* y, const float* table, const i64* ids, i64 n, i64 width) {
	GRID_STRIDE(i, n * width) y[i] = table[ids[i / width] * width + i % width];
}

// storeKV copies the keys and values of T new positions of B rows of fused q|k|v rows into a
// KV cache laid out (B, KV, cap, D), at positions pos on: a thread an element of the keys.
__global__ void storeKV(const float* qkv, float* k, float* v, i64 B, i64 T, i64 pos, i64 H, i64 KV, i64 D, i64 cap) {
	GRID_STRIDE(i, B * T * KV * D) {
		i64 d = i % D, g = i / D % KV, t = i / (D * KV) % T, b = i / (D * KV * T);
		const float* row = qkv + (b * T + t) * (H + 2 * KV) * D;
		i64 at = ((b * KV + g) * cap + pos + t) * D + d;
		k[at] = row[(H + g) * D + d];
		v[at] = row[(H + KV + g) * D + d];
	}
}

// embeddingBackward adds dy's rows into a cleared dtable; repeated ids add atomically, so
// the order of their sum varies from run to run.
__global__ void embeddingBackward(float* dtable, const float* dy, const i64* ids, i64 n, i64 width) {
	GRID_STRIDE(i, n * width) atomicAdd(&dtable[ids[i / width] * width + i % width], dy[i]);
}

// The norms take a warp per chunk of a row: chunk c < heads of row r is normalised, and
// chunk heads (where the row is wider than heads·size) is the rest of the row, copied. A
// warp reduces with shuffles alone, so a row of many small chunks (the QK norms' heads of
// 128) costs no block-wide synchronisation.
struct NormChunk {
	i64 row, c;
	bool in;
};

__device__ NormChunk normChunk(i64 rows, i64 width, i64 size, i64 heads) {
	i64 chunks = heads + (width > heads * size ? 1 : 0);
	i64 w = blockIdx.x * (i64)(blockDim.x / 32) + threadIdx.x / 32;
	return NormChunk{w / chunks, w % chunks, w < rows * chunks};
}

// rmsNormForward: y = x·rstd, rstd = 1/√(mean(x²) + eps), over each normalised chunk, rstd
// kept (heads a row) unless null.
__global__ void rmsNormForward(float* y, float* rstds, const float* x, i64 rows, i64 width, i64 size, i64 heads, float eps) {
	NormChunk k = normChunk(rows, width, size, heads);
	if (!k.in) return;
	int lane = threadIdx.x & 31;
	const float* in = x + k.row * width + k.c * size;
	float* out = y + k.row * width + k.c * size;
	if (k.c == heads) {
		for (i64 i = lane; i < width - heads * size; i += 32) out[i] = in[i];
		return;
	}
	float ss = 0.0f;
	for (i64 i = lane; i < size; i += 32) ss += in[i] * in[i];
	float rstd = 1.0f / sqrtf(warpReduce<Sum>(ss) / (float)size + eps);
	for (i64 i = lane; i < size; i += 32) out[i] = in[i] * rstd;
	if (rstds && lane == 0) rstds[k.row * heads + k.c] = rstd;
}

// rmsNormBackward: dx = rstd·(dy − y·mean(dy⊙y)) on normalised chunks, from the forward
// pass's output y and its rstd (see layers.RMSNormBackward), dy elsewhere. dx may be dy:
// each lane reads its elements before it writes them.
__global__ void rmsNormBackward(float* dx, const float* y, const float* rstds, const float* dy, i64 rows, i64 width, i64 size, i64 heads) {
	NormChunk k = normChunk(rows, width, size, heads);
	if (!k.in) return;
	int lane = threadIdx.x & 31;
	i64 at = k.row * width + k.c * size;
	const float *ys = y + at, *gs = dy + at;
	float* out = dx + at;
	if (k.c == heads) {
		for (i64 i = lane; i < width - heads * size; i += 32) out[i] = gs[i];
		return;
	}
	float dot = 0.0f;
	for (i64 i = lane; i < size; i += 32) dot += gs[i] * ys[i];
	float rstd = rstds[k.row * heads + k.c], c = warpReduce<Sum>(dot) / (float)size;
	for (i64 i = lane; i < size; i += 32) out[i] = rstd * (gs[i] - c * ys[i]);
}

// rotary: one block per row; position pos0 + row % seqLen; sign −1 is the inverse rotation.
// y may be x.
__global__ void rotary(float* y, const float* x, i64 width, i64 seqLen, i64 pos0, i64 heads, i64 half,
                       const float* cosTable, const float* sinTable, float sign) {
	i64 row = blockIdx.x, t = pos0 + row % seqLen;
	const float* in = x + row * width;
	float* out = y + row * width;
	const float* c = cosTable + t * half;
	const float* s = sinTable + t * half;
	int pairs = (int)(heads * half), n = (int)half; // within a row: 32-bit division, not 64-bit
	for (int p = threadIdx.x; p < pairs; p += blockDim.x) {
		int h = p / n, j = p - h * n, at = 2 * h * n + j;
		float a = in[at], b = in[at + n];
		out[at] = a * c[j] + sign * b * s[j];
		out[at + n] = b * c[j] - sign * a * s[j];
	}
	if (y != x) // the heads left unrotated (v), unless in place
		for (i64 i = 2 * pairs + threadIdx.x; i < width; i += blockDim.x) out[i] = in[i];
}

// attnDelta: δ = Σ_d dY·Y for every (batch row, position, head), one warp each, written in
// the log-sum-exps' order (b, h, t): what the backward kernels of attention.cu subtract.
__global__ void attnDelta(float* delta, const float* dy, const float* y, i64 rows, i64 T, i64 H, i64 D) {
	i64 r = blockIdx.x * (i64)(blockDim.x / 32) + threadIdx.x / 32;
	if (r >= rows) return;
	const float* a = dy + r * D;
	const float* c = y + r * D;
	float sum = 0.0f;
	for (i64 d = threadIdx.x & 31; d < D; d += 32) sum += a[d] * c[d];
	sum = warpReduce<Sum>(sum);
	i64 h = r % H, bt = r / H, t = bt % T, b = bt / T;
	if ((threadIdx.x & 31) == 0) delta[(b * H + h) * T + t] = sum;
}

// crossEntropy: one block per row of logits; see layers.CrossEntropyForward. One pass over
// the row finds its maximum and the sum of exponentials (a thread rescales its sum when its
// maximum grows), a second writes the gradient. grad (and scale) may be null; grad may be
// logits.
__global__ void crossEntropy(float* losses, const float* logits, const i64* targets, i64 vocab, float cap, float* grad, const float* scale) {
	i64 r = blockIdx.x, t = targets[r];
	const float* l = logits + r * vocab;
	float* g = grad ? grad + r * vocab : 0;
	float inv = cap > 0.0f ? 1.0f / cap : 0.0f; // the softcap's tanh(z/cap) as tanh(z·inv): a multiplication a logit, not a division
	if (t == -1 && g) {
		for (i64 j = threadIdx.x; j < vocab; j += blockDim.x) g[j] = 0.0f;
		if (threadIdx.x == 0) losses[r] = 0.0f;
		return;
	}
	float mt = NEG_INF, st = 0.0f; // this thread's maximum and its sum of exp(z − mt)
	for (i64 j = threadIdx.x; j < vocab; j += blockDim.x) {
		float z = cap > 0.0f ? cap * tanhf(l[j] * inv) : l[j];
		if (z > mt) {
			st = st * expf(mt - z) + 1.0f;
			mt = z;
		} else {
			st += expf(z - mt);
		}
	}
	float m = blockMax(mt);
	float sum = blockSum(mt == NEG_INF ? 0.0f : st * expf(mt - m));
	i64 tt = t < 0 ? 0 : t;
	float zt = cap > 0.0f ? cap * tanhf(l[tt] * inv) : l[tt];
	__syncthreads(); // every thread has read l[tt] before grad, which may be logits, changes
	if (threadIdx.x == 0) losses[r] = t == -1 ? 0.0f : m + logf(sum) - zt;
	if (!g) return;
	float s = scale[r] / sum;
	for (i64 j = threadIdx.x; j < vocab; j += blockDim.x) {
		float th = cap > 0.0f ? tanhf(l[j] * inv) : 0.0f;
		float z = cap > 0.0f ? cap * th : l[j];
		float dz = cap > 0.0f ? 1.0f - th * th : 1.0f;
		float v = expf(z - m) * s * dz;
		if (j == t) v -= scale[r] * dz;
		g[j] = v;
	}
}

__global__ void muonMomentum(float* buf, const float* g, float* upd, i64 n, float mu) {
	GRID_STRIDE(i, n) {
		float b = buf[i] + (1.0f - mu) * (g[i] - buf[i]);
		buf[i] = b;
		upd[i] = g[i] + mu * (b - g[i]);
	}
}

__global__ void adamW(float* p, const float* g, float* m, float* v, i64 n, float decay, float b1, float b2, float step, float invBC2, float eps) {
	GRID_STRIDE(i, n) {
		float gi = g[i];
		float mi = m[i] + b1 * (gi - m[i]);
		float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
		m[i] = mi;
		v[i] = vi;
		p[i] = p[i] * decay - step * mi / (sqrtf(vi) * invBC2 + eps);
	}
}

// sumSquares adds Σx² (in double) into *out; with a grid of several rows (blockIdx.y),
// matrix y of n values after x into out[y].
__global__ void sumSquares(const float* x, i64 n, double* out) {
	__shared__ double part[32];
	x += blockIdx.y * n;
	out += blockIdx.y;
	double s = 0.0;
	GRID_STRIDE(i, n) s += (double)x[i] * (double)x[i];
	for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
	int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
	if (lane == 0) part[warp] = s;
	__syncthreads();
	if (threadIdx.x == 0) {
		double total = 0.0;
		for (int w = 0; w < (int)(blockDim.x >> 5); w++) total += part[w];
		atomicAdd(out, total);
	}
}

// normalise scales x by 1/(√ss + 1e-7), ss a sum of squares sumSquares left; matrix by
// matrix as sumSquares.
__global__ void normalise(float* x, i64 n, const double* ss) {
	x += blockIdx.y * n;
	float inv = (float)(1.0 / (sqrt(ss[blockIdx.y]) + 1e-7));
	GRID_STRIDE(i, n) x[i] *= inv;
}

// transpose writes src (rows×cols) transposed into dst (cols×rows).
__global__ void transpose(float* dst, const float* src, i64 rows, i64 cols) {
	GRID_STRIDE(i, rows * cols) {
		i64 r = i / cols, c = i % cols;
		dst[c * rows + r] = src[i];
	}
}

// bf16 rounds f to bfloat16, to nearest with ties to even, keeping NaNs NaN (as
// cudabackend.ToBF16 does).
__device__ __forceinline__ unsigned short bf16(float f) {
	unsigned int bits = __float_as_uint(f);
	if ((bits & 0x7fffffffu) > 0x7f800000u) return (unsigned short)(bits >> 16) | 0x40;
	return (unsigned short)((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

// toBF16 rounds x to bfloat16 into dst: four floats a thread where x and dst are aligned
// for it (16 bytes read, 8 written: a warp moves whole cache lines), else one.
__global__ void toBF16(unsigned short* dst, const float* x, i64 n) {
	if (((size_t)x % 16 | (size_t)dst % 8) != 0) {
		GRID_STRIDE(i, n) dst[i] = bf16(x[i]);
		return;
	}
	GRID_STRIDE(i, n / 4) {
		float4 v = ((const float4*)x)[i];
		((ushort4*)dst)[i] = make_ushort4(bf16(v.x), bf16(v.y), bf16(v.z), bf16(v.w));
	}
	i64 tail = n / 4 * 4 + blockIdx.x * (i64)blockDim.x + threadIdx.x;
	if (tail < n) dst[tail] = bf16(x[tail]);
}

// mulQ8T sets y (n×rows) = x (n×cols)·wᵀ for w = diag(scale)·q, int8 rows×cols, for n <
// Q8_ROWS rows of x (a decoded token's): a warp a row of q, which it reads once, four int8s
// a lane at a time when the rows are 4-byte aligned, for every row of x.
__global__ void mulQ8T(const float* x, const signed char* q, const float* scale, float* y, i64 n, i64 rows, i64 cols) {
	i64 j = blockIdx.x * (i64)(blockDim.x / 32) + threadIdx.x / 32;
	int lane = threadIdx.x % 32;
	if (j >= rows) return;
	const signed char* w = q + j * cols;
	float acc[Q8_ROWS];
#pragma unroll
	for (int i = 0; i < Q8_ROWS; i++) acc[i] = 0.0f;
	if (cols % 4 == 0) {
		for (i64 p = 4 * lane; p < cols; p += 128) {
			char4 c = *(const char4*)(w + p);
			float w0 = c.x, w1 = c.y, w2 = c.z, w3 = c.w;
#pragma unroll
			for (int i = 0; i < Q8_ROWS; i++) {
				if (i < n) {
					const float* xi = x + i * cols + p;
					acc[i] += w0 * xi[0] + w1 * xi[1] + w2 * xi[2] + w3 * xi[3];
				}
			}
		}
	} else {
		for (i64 p = lane; p < cols; p += 32) {
			float wp = w[p];
#pragma unroll
			for (int i = 0; i < Q8_ROWS; i++) {
				if (i < n) acc[i] += wp * x[i * cols + p];
			}
		}
	}
#pragma unroll
	for (int i = 0; i < Q8_ROWS; i++) {
		if (i < n) {
			float v = warpReduce<Sum>(acc[i]);
			if (lane == 0) y[i * rows + j] = v * scale[j];
		}
	}
}

// dequantizeQ8 writes rows j0 ≤ j < j0+r of the float32 matrix that q (int8, a row of cols
// each) and scale stand for into w, row-major.
__global__ void dequantizeQ8(float* w, const signed char* q, const float* scale, i64 j0, i64 r, i64 cols) {
	GRID_STRIDE(i, r * cols) w[i] = scale[j0 + i / cols] * (float)q[j0 * cols + i];
}

} // extern "C"
