// Fused causal attention, forward and backward, for NVIDIA GPUs: the flash-attention
// scheme. Scores are made a tile at a time in registers, softmaxed online (a running
// maximum and sum per row), multiplied into the output and dropped: no T×T matrix is
// ever written, and tiles above the diagonal are skipped. The backward pass recomputes
// the probabilities from the log-sum-exps the forward pass saved, one block per key block
// and kv head: dK and dV sum in registers over the query heads of the kv head; dQ, which
// every key block adds to, is summed with atomic additions.
//
// Products are warp-wide 16×8×8 matrix multiply-accumulates (PTX mma.sync): on tensor
// cores in TF32 (inputs rounded to 10 mantissa bits, float32 sums) for the tf32 and
// bf16 engines on compute capability 8.0 and newer; for the strict float32 engine (and
// older GPUs) the same fragments are multiplied with float32 fused multiply-adds, so both
// run one algorithm. Each warp of a block owns 16 rows of the block's queries (keys in the
// backward pass). Every loop over the head dim runs to the bound the kernels are compiled
// for (ATT_MAXD), columns past a model's own head dim D being zeros in shared memory and
// registers: no branch within the products, and every offset a constant. Shared memory
// (attnShared in attention.go mirrors it): rows of a staged matrix are padded to MAXD+8
// floats, and each group of 8 columns is stored in the order 0 4 1 5 2 6 3 7, so that the
// two columns t and t+4 a fragment takes from a row are one 64-bit load and a warp's loads
// meet no bank twice.

typedef long long i64;

#define ATT_FWD_WARPS 8                        // warps of a forward block
#define ATT_BWD_WARPS (ATT_MAXD > 128 ? 4 : 8) // warps of a backward block (attnBwdWarps)
#define ATT_FWD_BLOCK (16 * ATT_FWD_WARPS)     // queries of a forward block
#define ATT_BWD_BLOCK (16 * ATT_BWD_WARPS)     // keys of a backward block
#define ATT_FWD_TILE 64                        // keys of a forward tile
#define ATT_TILE 32                            // queries of a backward tile
#define ATT_FWD_PSTRIDE (ATT_FWD_TILE + 8)     // row stride of a warp's 16×ATT_FWD_TILE scratch
#define ATT_PSTRIDE (ATT_TILE + 8)             // row stride of a warp's 16×ATT_TILE scratch
#define LOG2E 1.4426950408889634f
#define LN2 0.6931471805599453f
#define POS_INF __int_as_float(0x7f800000)

// round32 rounds x to TF32 (to nearest, ties away) where tensor cores will read it.
template <bool TC> __device__ __forceinline__ float round32(float x) {
#if __CUDA_ARCH__ >= 800
	if (TC) {
		unsigned r;
		asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
		return __uint_as_float(r);
	}
#endif
	return x;
}

// mma adds A·B to C for a 16×8 C, 16×8 A and 8×8 B held by the warp's lanes as PTX's
// m16n8k8 fragments: with g = lane/4 and t = lane%4, a = {A[g][t], A[g+8][t], A[g][t+4],
// A[g+8][t+4]}, b = {B[t][g], B[t+4][g]}, c = {C[g][2t], C[g][2t+1], C[g+8][2t], C[g+8][2t+1]}.
template <bool TC> __device__ __forceinline__ void mma(float c[4], const float a[4], const float b[2]) {
#if defined(CUDA_EMULATION) // the tests' CPU emulation (testdata/emulate.h), in float32
	emu::warpProduct<8>(
	    c,
	    [&](float* A, int lane) {
		    int g = lane >> 2, t = lane & 3;
		    A[g * 8 + t] = a[0], A[(g + 8) * 8 + t] = a[1], A[g * 8 + t + 4] = a[2], A[(g + 8) * 8 + t + 4] = a[3];
	    },
	    [&](float* B, int lane) {
		    int g = lane >> 2, t = lane & 3;
		    B[t * 8 + g] = b[0], B[(t + 4) * 8 + g] = b[1];
	    });
#else
#if __CUDA_ARCH__ >= 800
	if (TC) {
		asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
		             : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
		             : "r"(__float_as_uint(a[0])), "r"(__float_as_uint(a[1])), "r"(__float_as_uint(a[2])), "r"(__float_as_uint(a[3])),
		               "r"(__float_as_uint(b[0])), "r"(__float_as_uint(b[1])));
		return;
	}
#endif
	int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
#pragma unroll 1
	for (int k = 0; k < 8; k++) { // kept a loop: the strict kernels are for checking, and compile fast
		int hi = k >> 2, src = k & 3; // A[·][k] and B[k][·] are in lanes with t = k%4
		float a0 = __shfl_sync(0xffffffffu, hi ? a[2] : a[0], 4 * g + src);
		float a1 = __shfl_sync(0xffffffffu, hi ? a[3] : a[1], 4 * g + src);
		float b0 = __shfl_sync(0xffffffffu, hi ? b[1] : b[0], 8 * t + src);
		float b1 = __shfl_sync(0xffffffffu, hi ? b[1] : b[0], 8 * t + 4 + src);
		c[0] = fmaf(a0, b0, c[0]);
		c[1] = fmaf(a0, b1, c[1]);
		c[2] = fmaf(a1, b0, c[2]);
		c[3] = fmaf(a1, b1, c[3]);
	}
#endif
}

// perm8 is where column c of a staged matrix is stored.
__device__ __forceinline__ int perm8(int c) { return (c & ~7) | ((c & 3) << 1) | ((c >> 2) & 1); }

// fragA loads the A fragment of the 16×8 block at column k0 of a staged matrix (rows of
// stride st).
__device__ __forceinline__ void fragA(float a[4], const float* m, int st, int k0) {
	int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
	float2 lo = *(const float2*)(m + g * st + k0 + 2 * t), hi = *(const float2*)(m + (g + 8) * st + k0 + 2 * t);
	a[0] = lo.x, a[2] = lo.y, a[1] = hi.x, a[3] = hi.y;
}

// fragBT loads the B fragment of Mᵀ for the 8 rows of a staged M from n0 and its columns
// from k0: B[k][n] = M[n0+n][k0+k].
__device__ __forceinline__ void fragBT(float b[2], const float* m, int st, int n0, int k0) {
	int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
	float2 v = *(const float2*)(m + (n0 + g) * st + k0 + 2 * t);
	b[0] = v.x, b[1] = v.y;
}

// fragB loads the B fragment of a staged M itself at rows from k0 and columns from n0.
__device__ __forceinline__ void fragB(float b[2], const float* m, int st, int k0, int n0) {
	int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3, c = n0 + perm8(g);
	b[0] = m[(k0 + t) * st + c];
	b[1] = m[(k0 + t + 4) * st + c];
}

// stage copies ROWS rows from r0 of a global matrix (rows of stride ld, D columns, limit
// rows in all) into shared memory (stride st, columns in perm8's order), rounded for the
// products, zero past the matrix and in the columns from D to MAXD: eight columns at a
// time (two 16-byte loads and two 16-byte stores when the rows allow), THREADS threads (the
// block's) taking turns. Every load a thread makes is issued before its first store, so
// that their latencies overlap: a store to shared memory could alias a later load for all
// the compiler knows, which would keep them in order.
template <bool TC, int ROWS, int MAXD, int THREADS>
__device__ void stage(float* dst, int st, const float* src, i64 ld, int r0, int limit, int D) {
	constexpr int groups = MAXD / 8, TURNS = (ROWS * groups + THREADS - 1) / THREADS;
	bool wide = (D & 3) == 0 && (ld & 3) == 0 && ((unsigned long long)src & 15) == 0;
	float4 a[TURNS], b[TURNS];
#pragma unroll
	for (int k = 0; k < TURNS; k++) {
		int i = threadIdx.x + k * THREADS, r = i / groups, c = (i - r * groups) * 8;
		const float* row = src + (i64)(r0 + r) * ld;
		bool in = i < ROWS * groups && r0 + r < limit;
		a[k] = make_float4(0.0f, 0.0f, 0.0f, 0.0f), b[k] = a[k];
		if (wide) {
			if (in && c < D) a[k] = *(const float4*)(row + c);
			if (in && c + 4 < D) b[k] = *(const float4*)(row + c + 4);
		} else if (in) {
			float* v = &a[k].x;
			float* w = &b[k].x;
			for (int j = 0; j < 4; j++) {
				v[j] = c + j < D ? row[c + j] : 0.0f;
				w[j] = c + 4 + j < D ? row[c + 4 + j] : 0.0f;
			}
		}
	}
#pragma unroll
	for (int k = 0; k < TURNS; k++) {
		int i = threadIdx.x + k * THREADS, r = i / groups, c = (i - r * groups) * 8;
		if (i >= ROWS * groups) break;
		float4* out = (float4*)(dst + r * st + c);
		out[0] = make_float4(round32<TC>(a[k].x), round32<TC>(b[k].x), round32<TC>(a[k].y), round32<TC>(b[k].y));
		out[1] = make_float4(round32<TC>(a[k].z), round32<TC>(b[k].z), round32<TC>(a[k].w), round32<TC>(b[k].w));
	}
}

// softmaxTile is a forward tile's online softmax, in base 2: the warp's scores s (its 16
// queries from wq against ATT_FWD_TILE keys from k0, as m16n8 accumulators) masked where
// the tile reaches past the diagonal or Tk (row r sees keys up to r + off and below Tk),
// and the running maxima m (of the scores times sl2), sums l and outputs o carried over to
// the tile's new maxima; a score's probability is then exp2(s·sl2 − m). Key 0 is in the
// first tile, so the maxima are finite from it on.
template <int MAXD>
__device__ __forceinline__ void softmaxTile(float s[ATT_FWD_TILE / 8][4], float m[2], float l[2], float o[MAXD / 8][4], int k0, int wq,
                                            int off, int Tk, float sl2) {
	int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
	if (k0 + ATT_FWD_TILE - 1 > wq + off || k0 + ATT_FWD_TILE > Tk) { // the same for the whole warp
#pragma unroll
		for (int j = 0; j < ATT_FWD_TILE / 8; j++)
#pragma unroll
			for (int e = 0; e < 4; e++) {
				int key = k0 + j * 8 + 2 * t + (e & 1), row = wq + g + 8 * (e >> 1);
				if (key > row + off || key >= Tk) s[j][e] = -POS_INF;
			}
	}
	float mx[2] = {-POS_INF, -POS_INF};
#pragma unroll
	for (int j = 0; j < ATT_FWD_TILE / 8; j++)
#pragma unroll
		for (int e = 0; e < 4; e++) mx[e >> 1] = fmaxf(mx[e >> 1], s[j][e]);
#pragma unroll
	for (int i = 0; i < 2; i++) {
		mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 1));
		mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 2));
		float mn = fmaxf(m[i], mx[i] * sl2), alpha = exp2f(m[i] - mn);
		m[i] = mn;
		l[i] *= alpha;
#pragma unroll
		for (int nt = 0; nt < MAXD / 8; nt++) {
			o[nt][2 * i] *= alpha;
			o[nt][2 * i + 1] *= alpha;
		}
	}
}

// finishForward writes the warp's 16 rows of Y = o / l (each row's l summed over the lanes
// that hold it), its first D columns, and their log-sum-exps L.
template <int MAXD>
__device__ __forceinline__ void finishForward(float o[MAXD / 8][4], const float m[2], float l[2], float* Y, i64 ys, float* L, int wq,
                                              int Tq, int D) {
	int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
#pragma unroll
	for (int i = 0; i < 2; i++) {
		l[i] += __shfl_xor_sync(0xffffffffu, l[i], 1);
		l[i] += __shfl_xor_sync(0xffffffffu, l[i], 2);
	}
#pragma unroll
	for (int nt = 0; nt < MAXD / 8; nt++) {
#pragma unroll
		for (int e = 0; e < 4; e++) {
			int row = wq + g + 8 * (e >> 1), d = nt * 8 + 2 * t + (e & 1);
			if (row < Tq && d < D) Y[(i64)row * ys + d] = o[nt][e] / l[e >> 1];
		}
	}
#pragma unroll
	for (int i = 0; i < 2; i++) {
		int row = wq + g + 8 * i;
		if (t == 0 && row < Tq) L[row] = m[i] * LN2 + logf(l[i]);
	}
}

// attnForwardBody: one block per ATT_FWD_BLOCK queries of one (batch row, head); the heaviest
// blocks (last queries, most keys) are scheduled first. Query i sees keys 0..i+Tk−Tq. Q, K,
// V and Y point at the head's first row (rows of stride qs, ks, ks, ys); L at its Tq
// log-sum-exps.
template <int MAXD, bool TC>
__device__ void attnForwardBody(const float* Q, i64 qs, const float* K, const float* V, i64 ks, float* Y, i64 ys, float* L,
                                int Tq, int Tk, int D, float scale) {
	extern __shared__ float smem[];
	constexpr int st = MAXD + 8;
	const int off = Tk - Tq;
	int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
	float* Ks = smem;
	float* Vs = Ks + ATT_FWD_TILE * st;
	float* Ps = Vs + ATT_FWD_TILE * st + warp * 16 * ATT_FWD_PSTRIDE;
	int q0 = (gridDim.x - 1 - blockIdx.x) * ATT_FWD_BLOCK, wq = q0 + warp * 16;
	float sl2 = scale * LOG2E;

	float qa[MAXD / 8][4]; // the warp's 16 query rows as A fragments
#pragma unroll
	for (int kk = 0; kk < MAXD / 8; kk++) {
#pragma unroll
		for (int e = 0; e < 4; e++) {
			int r = wq + g + 8 * (e & 1), d = kk * 8 + t + 4 * (e >> 1);
			qa[kk][e] = round32<TC>(r < Tq && d < D ? Q[(i64)r * qs + d] : 0.0f);
		}
	}
	float o[MAXD / 8][4] = {}, m[2] = {-POS_INF, -POS_INF}, l[2] = {0.0f, 0.0f};
	int last = min(q0 + ATT_FWD_BLOCK, Tq) - 1 + off, wlast = min(wq + 16, Tq) - 1 + off;
	for (int k0 = 0; k0 <= last; k0 += ATT_FWD_TILE) {
		__syncthreads(); // every warp is done with the previous tile
		stage<TC, ATT_FWD_TILE, MAXD, 32 * ATT_FWD_WARPS>(Ks, st, K, ks, k0, Tk, D);
		stage<TC, ATT_FWD_TILE, MAXD, 32 * ATT_FWD_WARPS>(Vs, st, V, ks, k0, Tk, D);
		__syncthreads();
		if (k0 > wlast) continue; // the warp's queries see none of these keys

		float s[ATT_FWD_TILE / 8][4] = {};
#pragma unroll
		for (int kk = 0; kk < MAXD / 8; kk++) {
#pragma unroll
			for (int j = 0; j < ATT_FWD_TILE / 8; j++) {
				float b[2];
				fragBT(b, Ks, st, j * 8, kk * 8);
				mma<TC>(s[j], qa[kk], b);
			}
		}
		softmaxTile<MAXD>(s, m, l, o, k0, wq, off, Tk, sl2);
#pragma unroll
		for (int j = 0; j < ATT_FWD_TILE / 8; j++)
#pragma unroll
			for (int e = 0; e < 4; e++) {
				float p = exp2f(s[j][e] * sl2 - m[e >> 1]);
				l[e >> 1] += p;
				Ps[(g + 8 * (e >> 1)) * ATT_FWD_PSTRIDE + perm8(j * 8 + 2 * t + (e & 1))] = round32<TC>(p);
			}
		__syncwarp();
#pragma unroll
		for (int kk = 0; kk < ATT_FWD_TILE / 8; kk++) {
			float a[4];
			fragA(a, Ps, ATT_FWD_PSTRIDE, kk * 8);
#pragma unroll
			for (int nt = 0; nt < MAXD / 8; nt++) {
				float b[2];
				fragB(b, Vs, st, kk * 8, nt * 8);
				mma<TC>(o[nt], a, b);
			}
		}
		__syncwarp(); // the products have read Ps before the next tile overwrites it
	}
	finishForward<MAXD>(o, m, l, Y, ys, L, wq, Tq, D);
}

// The bfloat16 forward pass, the bf16 engine's (ATT_BF16 1). Products are warp-wide
// 16×8×16 multiply-accumulates of bfloat16 inputs with float32 sums (PTX mma.sync
// m16n8k16), whose fragments pair elements: with g = lane/4 and t = lane%4, A's registers
// hold A[g][2t..2t+1], A[g+8][2t..2t+1], A[g][2t+8..2t+9], A[g+8][2t+8..2t+9], B's
// B[2t..2t+1][g], B[2t+8..2t+9][g], and C is m16n8k8's. Every matrix is staged by rows,
// padded by 8 bfloat16s a row (a warp's loads meet no bank twice): a B fragment read
// across a row (K for the scores) is two 32-bit loads, one read down the columns (V for
// P·V) one transposing ldmatrix. Two adjacent 16×8 score accumulators are, rounded, the A
// fragment of P·V for 16 keys: the probabilities never leave registers.

// pack2 rounds lo and hi to bfloat16 (to nearest, ties to even) into one register, lo in
// its low half.
__device__ __forceinline__ unsigned pack2(float lo, float hi) {
#if defined(CUDA_EMULATION)
	auto round = [](float f) {
		unsigned bits = __float_as_uint(f);
		return (bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16;
	};
	return round(lo) | round(hi) << 16;
#else
	unsigned r;
	asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
	return r;
#endif
}

// mma16 adds A·B to C for a 16×8 C, 16×16 A and 16×8 B in bfloat16 fragments (above).
__device__ __forceinline__ void mma16(float c[4], const unsigned a[4], const unsigned b[2]) {
#if defined(CUDA_EMULATION)
	auto lo = [](unsigned r) { return __uint_as_float(r << 16); };
	auto hi = [](unsigned r) { return __uint_as_float(r & 0xffff0000u); };
	emu::warpProduct<16>(
	    c,
	    [&](float* A, int lane) {
		    int g = lane >> 2, t = lane & 3;
		    for (int i = 0; i < 4; i++) {
			    int r = g + 8 * (i & 1), k = 2 * t + 8 * (i >> 1);
			    A[r * 16 + k] = lo(a[i]), A[r * 16 + k + 1] = hi(a[i]);
		    }
	    },
	    [&](float* B, int lane) {
		    int g = lane >> 2, t = lane & 3;
		    for (int i = 0; i < 2; i++) {
			    int k = 2 * t + 8 * i;
			    B[k * 8 + g] = lo(b[i]), B[(k + 1) * 8 + g] = hi(b[i]);
		    }
	    });
#else
	asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
	             : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
	             : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#endif
}

// fragA16 loads the A fragment of the 16×16 block at row r0 and column k0 of a bfloat16
// matrix staged by rows of stride st.
__device__ __forceinline__ void fragA16(unsigned a[4], const unsigned short* m, int st, int r0, int k0) {
	int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
	const unsigned short* p = m + (r0 + g) * st + k0 + 2 * t;
	a[0] = *(const unsigned*)p, a[1] = *(const unsigned*)(p + 8 * st);
	a[2] = *(const unsigned*)(p + 8), a[3] = *(const unsigned*)(p + 8 * st + 8);
}

// fragB16 loads the B fragment B[k][n] = M[n0+n][k0+k] of a bfloat16 matrix M staged by
// rows of stride st: Mᵀ's 16×8 block.
__device__ __forceinline__ void fragB16(unsigned b[2], const unsigned short* m, int st, int n0, int k0) {
	int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
	const unsigned short* p = m + (n0 + g) * st + k0 + 2 * t;
	b[0] = *(const unsigned*)p, b[1] = *(const unsigned*)(p + 8);
}

// fragBT16 loads the B fragment B[k][n] = M[k0+k][n0+n] of a bfloat16 matrix M staged by
// rows of stride st (a multiple of 8): M's 16×8 block read down its columns, with one
// ldmatrix .trans, lanes 0–15 naming the block's rows (16-byte aligned).
__device__ __forceinline__ void fragBT16(unsigned b[2], const unsigned short* m, int st, int k0, int n0) {
	int lane = threadIdx.x & 31;
	const unsigned short* row = m + (k0 + (lane & 15)) * st + n0;
#if defined(CUDA_EMULATION)
	auto rows = emu::laneAddresses(row);
	int g = lane >> 2, t = lane & 3;
	for (int i = 0; i < 2; i++) b[i] = rows[8 * i + 2 * t][g] | (unsigned)rows[8 * i + 2 * t + 1][g] << 16;
#else
	unsigned addr;
	asm("{ .reg .u64 a; cvta.to.shared.u64 a, %1; cvt.u32.u64 %0, a; }" : "=r"(addr) : "l"(row));
	asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0, %1}, [%2];" : "=r"(b[0]), "=r"(b[1]) : "r"(addr));
#endif
}

// stageBF16 copies ROWS rows from r0 of a global matrix (rows of stride ld, D columns,
// limit rows in all) into shared memory as bfloat16 rows of stride st, zero past the matrix
// and from column D to MAXD. Four columns at a time (one 16-byte load when the rows allow),
// THREADS threads taking turns, every load issued before the first store, as in stage.
template <int ROWS, int MAXD, int THREADS>
__device__ void stageBF16(unsigned short* dst, int st, const float* src, i64 ld, int r0, int limit, int D) {
	constexpr int quads = MAXD / 4, TURNS = (ROWS * quads + THREADS - 1) / THREADS;
	bool wide = (D & 3) == 0 && (ld & 3) == 0 && ((unsigned long long)src & 15) == 0;
	float4 v[TURNS];
#pragma unroll
	for (int k = 0; k < TURNS; k++) {
		int i = threadIdx.x + k * THREADS, r = i / quads, c = (i - r * quads) * 4;
		const float* row = src + (i64)(r0 + r) * ld;
		v[k] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
		if (i < ROWS * quads && r0 + r < limit) {
			if (wide) {
				if (c < D) v[k] = *(const float4*)(row + c);
			} else {
				v[k].x = c < D ? row[c] : 0.0f;
				v[k].y = c + 1 < D ? row[c + 1] : 0.0f;
				v[k].z = c + 2 < D ? row[c + 2] : 0.0f;
				v[k].w = c + 3 < D ? row[c + 3] : 0.0f;
			}
		}
	}
#pragma unroll
	for (int k = 0; k < TURNS; k++) {
		int i = threadIdx.x + k * THREADS, r = i / quads, c = (i - r * quads) * 4;
		if (i >= ROWS * quads) break;
		*(uint2*)(dst + r * st + c) = make_uint2(pack2(v[k].x, v[k].y), pack2(v[k].z, v[k].w));
	}
}

// attnForwardBodyBF16 is attnForwardBody in bfloat16 products: the same blocks, tiles,
// masks and online softmax. Shared memory: ATT_FWD_TILE rows of K, then as many of V, of
// MAXD+8 bfloat16s each (MAXD a multiple of 16).
template <int MAXD>
__device__ void attnForwardBodyBF16(const float* Q, i64 qs, const float* K, const float* V, i64 ks, float* Y, i64 ys, float* L,
                                    int Tq, int Tk, int D, float scale) {
	extern __shared__ float smem[];
	constexpr int st = MAXD + 8;
	const int off = Tk - Tq;
	int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
	unsigned short* Ks = (unsigned short*)smem;
	unsigned short* Vs = Ks + ATT_FWD_TILE * st;
	int q0 = (gridDim.x - 1 - blockIdx.x) * ATT_FWD_BLOCK, wq = q0 + warp * 16;
	float sl2 = scale * LOG2E;

	unsigned qa[MAXD / 16][4]; // the warp's 16 query rows as A fragments
#pragma unroll
	for (int kk = 0; kk < MAXD / 16; kk++) {
#pragma unroll
		for (int e = 0; e < 4; e++) {
			int r = wq + g + 8 * (e & 1), d = kk * 16 + 2 * t + 8 * (e >> 1);
			const float* q = Q + (i64)r * qs + d;
			qa[kk][e] = pack2(r < Tq && d < D ? q[0] : 0.0f, r < Tq && d + 1 < D ? q[1] : 0.0f);
		}
	}
	float o[MAXD / 8][4] = {}, m[2] = {-POS_INF, -POS_INF}, l[2] = {0.0f, 0.0f};
	int last = min(q0 + ATT_FWD_BLOCK, Tq) - 1 + off, wlast = min(wq + 16, Tq) - 1 + off;
	for (int k0 = 0; k0 <= last; k0 += ATT_FWD_TILE) {
		__syncthreads(); // every warp is done with the previous tile
		stageBF16<ATT_FWD_TILE, MAXD, 32 * ATT_FWD_WARPS>(Ks, st, K, ks, k0, Tk, D);
		stageBF16<ATT_FWD_TILE, MAXD, 32 * ATT_FWD_WARPS>(Vs, st, V, ks, k0, Tk, D);
		__syncthreads();
		if (k0 > wlast) continue; // the warp's queries see none of these keys

		float s[ATT_FWD_TILE / 8][4] = {};
#pragma unroll
		for (int kk = 0; kk < MAXD / 16; kk++) {
#pragma unroll
			for (int j = 0; j < ATT_FWD_TILE / 8; j++) {
				unsigned b[2];
				fragB16(b, Ks, st, j * 8, kk * 16);
				mma16(s[j], qa[kk], b);
			}
		}
		softmaxTile<MAXD>(s, m, l, o, k0, wq, off, Tk, sl2);
#pragma unroll
		for (int c = 0; c < ATT_FWD_TILE / 16; c++) { // keys 16c..16c+15: accumulators 2c and 2c+1
			float p[2][4];
#pragma unroll
			for (int h = 0; h < 2; h++)
#pragma unroll
				for (int e = 0; e < 4; e++) {
					p[h][e] = exp2f(s[2 * c + h][e] * sl2 - m[e >> 1]);
					l[e >> 1] += p[h][e];
				}
			unsigned pa[4] = {pack2(p[0][0], p[0][1]), pack2(p[0][2], p[0][3]), pack2(p[1][0], p[1][1]), pack2(p[1][2], p[1][3])};
#pragma unroll
			for (int nt = 0; nt < MAXD / 8; nt++) {
				unsigned b[2];
				fragBT16(b, Vs, st, c * 16, nt * 8);
				mma16(o[nt], pa, b);
			}
		}
	}
	finishForward<MAXD>(o, m, l, Y, ys, L, wq, Tq, D);
}

// HeadRows are query head h's rows for the backward pass in batch row b: its queries,
// output gradients and query gradients, its log-sum-exps and δ.
struct HeadRows {
	const float *Q, *dY, *L, *Dl;
	float* dQ;
};

__device__ __forceinline__ HeadRows headRows(const float* qkv, const float* dy, const float* lse, const float* delta, float* dqkv, int b,
                                             int h, int T, int H, int KV, int D) {
	i64 w = (i64)(H + 2 * KV) * D, yw = (i64)H * D;
	return HeadRows{qkv + (i64)b * T * w + h * D, dy + (i64)b * T * yw + h * D, lse + ((i64)b * H + h) * T, delta + ((i64)b * H + h) * T,
	                dqkv + (i64)b * T * w + h * D};
}

// stageStats stages a backward tile's log-sum-exps (in base 2) and δ, from query q0:
// infinite and zero past the sequence, so that those queries' probabilities are 0.
__device__ __forceinline__ void stageStats(float* ls, float* dl, const float* L, const float* Dl, int q0, int T) {
	for (int i = threadIdx.x; i < ATT_TILE; i += blockDim.x) {
		bool in = q0 + i < T;
		ls[i] = in ? L[q0 + i] * LOG2E : POS_INF;
		dl[i] = in ? Dl[q0 + i] : 0.0f;
	}
}

// addDQ adds a warp's share of a backward tile's dQ (the tile's two 16-query halves, its
// 8-column groups warp, warp + ATT_BWD_WARPS, ...), times scale, into dQ (rows of stride w).
template <int MAXD>
__device__ __forceinline__ void addDQ(float dq[2][MAXD / 8 / ATT_BWD_WARPS][4], float* dQ, i64 w, int q0, int T, int D, float scale) {
	int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
#pragma unroll
	for (int m = 0; m < 2; m++)
#pragma unroll
		for (int i = 0; i < MAXD / 8 / ATT_BWD_WARPS; i++)
#pragma unroll
			for (int e = 0; e < 4; e++) {
				int q = q0 + m * 16 + g + 8 * (e >> 1), d = (warp + ATT_BWD_WARPS * i) * 8 + 2 * t + (e & 1);
				if (q < T && d < D) atomicAdd(&dQ[(i64)q * w + d], dq[m][i][e] * scale);
			}
}

// writeDKV writes a warp's 16 keys from wk of dK (times scale) and dV, their first D
// columns, into the kv head kv of a batch row's gradient rows (stride w).
template <int MAXD>
__device__ __forceinline__ void writeDKV(float dk[MAXD / 8][4], float dv[MAXD / 8][4], float* rows, i64 w, int H, int KV, int kv, int wk,
                                         int T, int D, float scale) {
	int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
	float* dK = rows + (H + kv) * D;
	float* dV = rows + (H + KV + kv) * D;
#pragma unroll
	for (int nt = 0; nt < MAXD / 8; nt++) {
#pragma unroll
		for (int e = 0; e < 4; e++) {
			int key = wk + g + 8 * (e >> 1), d = nt * 8 + 2 * t + (e & 1);
			if (key < T && d < D) {
				dK[(i64)key * w + d] = dk[nt][e] * scale;
				dV[(i64)key * w + d] = dv[nt][e];
			}
		}
	}
}

// attnBackwardBody: the gradients for ATT_BWD_BLOCK keys of one (batch row, kv head), over
// the query heads that share it and every query that sees the keys, ATT_TILE queries at a
// time: Sᵀ = K·Qᵀ, Pᵀ from the saved log-sum-exps, dPᵀ = V·dYᵀ, dSᵀ = Pᵀ ⊙ (dPᵀ − δ), then
// dV += Pᵀ·dY and dK += dSᵀ·Q in registers (each warp its 16 keys), and the tile's share
// of dQ = dS·K added into dqkv's cleared queries (each warp a slice of the head dim; one
// atomic addition per element and key block, so the sums' order varies from run to run).
// The scale multiplies dK and dQ as they are written. Heaviest blocks (first keys) first.
template <int MAXD, bool TC>
__device__ void attnBackwardBody(const float* qkv, const float* dy, const float* lse, const float* delta, float* dqkv,
                                 int T, int H, int KV, int D, float scale) {
	extern __shared__ float smem[];
	constexpr int st = MAXD + 8;
	const int rep = H / KV;
	int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
	float* Ks = smem;
	float* Vs = Ks + ATT_BWD_BLOCK * st;
	float* Qs = Vs + ATT_BWD_BLOCK * st;
	float* dYs = Qs + ATT_TILE * st;
	float* ls = dYs + ATT_TILE * st;
	float* dl = ls + ATT_TILE;
	float* PT = dl + ATT_TILE + warp * 16 * ATT_PSTRIDE;
	float* dSTs = PT + (ATT_BWD_WARPS - warp) * 16 * ATT_PSTRIDE; // every warp's dSᵀ: the block's keys × the tile's queries
	float* dST = dSTs + warp * 16 * ATT_PSTRIDE;
	int b = blockIdx.y / KV, kv = blockIdx.y % KV, k0 = blockIdx.x * ATT_BWD_BLOCK, wk = k0 + warp * 16;
	i64 w = (i64)(H + 2 * KV) * D, yw = (i64)H * D;
	const float* base = qkv + (i64)b * T * w;
	float sl2 = scale * LOG2E;

	stage<TC, ATT_BWD_BLOCK, MAXD, 32 * ATT_BWD_WARPS>(Ks, st, base + (H + kv) * D, w, k0, T, D);
	stage<TC, ATT_BWD_BLOCK, MAXD, 32 * ATT_BWD_WARPS>(Vs, st, base + (H + KV + kv) * D, w, k0, T, D);
	float dk[MAXD / 8][4] = {}, dv[MAXD / 8][4] = {};
	for (int h = kv * rep; h < (kv + 1) * rep; h++) {
		HeadRows hr = headRows(qkv, dy, lse, delta, dqkv, b, h, T, H, KV, D);
		for (int q0 = k0 / ATT_TILE * ATT_TILE; q0 < T; q0 += ATT_TILE) {
			__syncthreads(); // every warp is done with the previous tile (and the keys are staged)
			stage<TC, ATT_TILE, MAXD, 32 * ATT_BWD_WARPS>(Qs, st, hr.Q, w, q0, T, D);
			stage<TC, ATT_TILE, MAXD, 32 * ATT_BWD_WARPS>(dYs, st, hr.dY, yw, q0, T, D);
			stageStats(ls, dl, hr.L, hr.Dl, q0, T);
			__syncthreads();
			if (q0 + ATT_TILE <= wk) { // no query of the tile sees the warp's keys
				for (int i = lane; i < 16 * ATT_TILE; i += 32) dST[i / ATT_TILE * ATT_PSTRIDE + i % ATT_TILE] = 0.0f;
			} else {
				float s[ATT_TILE / 8][4] = {}, dp[ATT_TILE / 8][4] = {};
#pragma unroll
				for (int kk = 0; kk < MAXD / 8; kk++) {
					float ak[4], av[4];
					fragA(ak, Ks + warp * 16 * st, st, kk * 8);
					fragA(av, Vs + warp * 16 * st, st, kk * 8);
#pragma unroll
					for (int j = 0; j < ATT_TILE / 8; j++) {
						float b1[2], b2[2];
						fragBT(b1, Qs, st, j * 8, kk * 8);
						fragBT(b2, dYs, st, j * 8, kk * 8);
						mma<TC>(s[j], ak, b1);
						mma<TC>(dp[j], av, b2);
					}
				}
#pragma unroll
				for (int j = 0; j < ATT_TILE / 8; j++)
#pragma unroll
					for (int e = 0; e < 4; e++) {
						int r = g + 8 * (e >> 1), qi = j * 8 + 2 * t + (e & 1), key = wk + r, q = q0 + qi;
						float p = key <= q && q < T ? exp2f(s[j][e] * sl2 - ls[qi]) : 0.0f;
						PT[r * ATT_PSTRIDE + perm8(qi)] = round32<TC>(p);
						dST[r * ATT_PSTRIDE + perm8(qi)] = round32<TC>(p * (dp[j][e] - dl[qi]));
					}
				__syncwarp();
#pragma unroll
				for (int kk = 0; kk < ATT_TILE / 8; kk++) {
					float ap[4], ad[4];
					fragA(ap, PT, ATT_PSTRIDE, kk * 8);
					fragA(ad, dST, ATT_PSTRIDE, kk * 8);
#pragma unroll
					for (int nt = 0; nt < MAXD / 8; nt++) {
						float b1[2], b2[2];
						fragB(b1, dYs, st, kk * 8, nt * 8);
						fragB(b2, Qs, st, kk * 8, nt * 8);
						mma<TC>(dv[nt], ap, b1);
						mma<TC>(dk[nt], ad, b2);
					}
				}
			}
			__syncthreads(); // every warp's dSᵀ is written
			// dQ of the tile's queries += dS·K over the block's keys: warp w takes the head
			// dim's 8-column groups w, w + ATT_BWD_WARPS, ...; A = dS = dSᵀ read across.
			float dq[2][MAXD / 8 / ATT_BWD_WARPS][4] = {};
#pragma unroll
			for (int kk = 0; kk < ATT_BWD_BLOCK / 8; kk++) {
				float a[2][4];
#pragma unroll
				for (int m = 0; m < 2; m++) {
					const float* col = dSTs + (kk * 8 + t) * ATT_PSTRIDE;
					int q = m * 16 + g;
					a[m][0] = col[perm8(q)];
					a[m][1] = col[perm8(q + 8)];
					a[m][2] = col[4 * ATT_PSTRIDE + perm8(q)];
					a[m][3] = col[4 * ATT_PSTRIDE + perm8(q + 8)];
				}
#pragma unroll
				for (int i = 0; i < MAXD / 8 / ATT_BWD_WARPS; i++) {
					int nt = warp + ATT_BWD_WARPS * i;
					float bk[2];
					fragB(bk, Ks, st, kk * 8, nt * 8);
					mma<TC>(dq[0][i], a[0], bk);
					mma<TC>(dq[1][i], a[1], bk);
				}
			}
			addDQ<MAXD>(dq, hr.dQ, w, q0, T, D, scale);
		}
	}
	writeDKV<MAXD>(dk, dv, dqkv + (i64)b * T * w, w, H, KV, kv, wk, T, D, scale);
}

// attnBackwardBodyBF16 is attnBackwardBody in bfloat16 products (the bf16 engine's, for
// head dims up to 128): the same blocks, tiles, masks and order of work. Shared memory, all
// bfloat16 but the tile's log-sum-exps and δ, every matrix by rows: the block's keys and
// values (A of Sᵀ = K·Qᵀ and dPᵀ = V·dYᵀ; K read down its columns, B of dQ = dS·K), the
// tile's queries and output gradients (B of Sᵀ and dPᵀ; read down their columns, B of
// dK += dSᵀ·Q and dV += Pᵀ·dY), and dS, the tile's queries over the block's keys (A of
// dQ). Pᵀ and dSᵀ go from the accumulators of Sᵀ and dPᵀ straight into the A fragments of
// dV's and dK's products, as in the forward pass.
template <int MAXD>
__device__ void attnBackwardBodyBF16(const float* qkv, const float* dy, const float* lse, const float* delta, float* dqkv,
                                     int T, int H, int KV, int D, float scale) {
	extern __shared__ float smem[];
	constexpr int st = MAXD + 8, sst = ATT_BWD_BLOCK + 8;
	const int rep = H / KV;
	int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
	unsigned short* Ks = (unsigned short*)smem;   // ATT_BWD_BLOCK rows of st
	unsigned short* Vs = Ks + ATT_BWD_BLOCK * st; // ATT_BWD_BLOCK rows of st
	unsigned short* Qs = Vs + ATT_BWD_BLOCK * st; // ATT_TILE rows of st
	unsigned short* dYs = Qs + ATT_TILE * st;     // ATT_TILE rows of st
	unsigned short* dS = dYs + ATT_TILE * st;     // ATT_TILE rows of sst
	float* ls = (float*)(dS + ATT_TILE * sst);
	float* dl = ls + ATT_TILE;
	int b = blockIdx.y / KV, kv = blockIdx.y % KV, k0 = blockIdx.x * ATT_BWD_BLOCK, wk = k0 + warp * 16;
	i64 w = (i64)(H + 2 * KV) * D, yw = (i64)H * D;
	const float* base = qkv + (i64)b * T * w;
	float sl2 = scale * LOG2E;

	stageBF16<ATT_BWD_BLOCK, MAXD, 32 * ATT_BWD_WARPS>(Ks, st, base + (H + kv) * D, w, k0, T, D);
	stageBF16<ATT_BWD_BLOCK, MAXD, 32 * ATT_BWD_WARPS>(Vs, st, base + (H + KV + kv) * D, w, k0, T, D);
	float dk[MAXD / 8][4] = {}, dv[MAXD / 8][4] = {};
	for (int h = kv * rep; h < (kv + 1) * rep; h++) {
		HeadRows hr = headRows(qkv, dy, lse, delta, dqkv, b, h, T, H, KV, D);
		for (int q0 = k0 / ATT_TILE * ATT_TILE; q0 < T; q0 += ATT_TILE) {
			__syncthreads(); // every warp is done with the previous tile (and the keys are staged)
			stageBF16<ATT_TILE, MAXD, 32 * ATT_BWD_WARPS>(Qs, st, hr.Q, w, q0, T, D);
			stageBF16<ATT_TILE, MAXD, 32 * ATT_BWD_WARPS>(dYs, st, hr.dY, yw, q0, T, D);
			stageStats(ls, dl, hr.L, hr.Dl, q0, T);
			__syncthreads();
			if (q0 + ATT_TILE <= wk) { // no query of the tile sees the warp's keys
				for (int i = lane; i < 16 * ATT_TILE; i += 32) dS[(i / 16) * sst + warp * 16 + i % 16] = 0;
			} else {
				float s[ATT_TILE / 8][4] = {}, dp[ATT_TILE / 8][4] = {};
#pragma unroll
				for (int kk = 0; kk < MAXD / 16; kk++) {
					unsigned ak[4], av[4];
					fragA16(ak, Ks, st, warp * 16, kk * 16);
					fragA16(av, Vs, st, warp * 16, kk * 16);
#pragma unroll
					for (int j = 0; j < ATT_TILE / 8; j++) {
						unsigned b1[2], b2[2];
						fragB16(b1, Qs, st, j * 8, kk * 16);
						fragB16(b2, dYs, st, j * 8, kk * 16);
						mma16(s[j], ak, b1);
						mma16(dp[j], av, b2);
					}
				}
				// Pᵀ into s and dSᵀ = Pᵀ ⊙ (dPᵀ − δ) into dp, dS to shared memory for dQ.
#pragma unroll
				for (int j = 0; j < ATT_TILE / 8; j++)
#pragma unroll
					for (int e = 0; e < 4; e++) {
						int r = g + 8 * (e >> 1), qi = j * 8 + 2 * t + (e & 1), key = wk + r, q = q0 + qi;
						s[j][e] = key <= q && q < T ? exp2f(s[j][e] * sl2 - ls[qi]) : 0.0f;
						dp[j][e] = s[j][e] * (dp[j][e] - dl[qi]);
						dS[qi * sst + warp * 16 + r] = (unsigned short)pack2(dp[j][e], 0.0f);
					}
#pragma unroll
				for (int c = 0; c < ATT_TILE / 16; c++) { // queries 16c..16c+15: accumulators 2c and 2c+1
					unsigned pa[4] = {pack2(s[2 * c][0], s[2 * c][1]), pack2(s[2 * c][2], s[2 * c][3]),
					                  pack2(s[2 * c + 1][0], s[2 * c + 1][1]), pack2(s[2 * c + 1][2], s[2 * c + 1][3])};
					unsigned da[4] = {pack2(dp[2 * c][0], dp[2 * c][1]), pack2(dp[2 * c][2], dp[2 * c][3]),
					                  pack2(dp[2 * c + 1][0], dp[2 * c + 1][1]), pack2(dp[2 * c + 1][2], dp[2 * c + 1][3])};
#pragma unroll
					for (int nt = 0; nt < MAXD / 8; nt++) {
						unsigned b1[2], b2[2];
						fragBT16(b1, dYs, st, c * 16, nt * 8);
						fragBT16(b2, Qs, st, c * 16, nt * 8);
						mma16(dv[nt], pa, b1);
						mma16(dk[nt], da, b2);
					}
				}
			}
			__syncthreads(); // every warp's share of dS is written
			// dQ of the tile's queries += dS·K over the block's keys: warp w takes the head
			// dim's 8-column groups w, w + ATT_BWD_WARPS, ..., as attnBackwardBody does.
			float dq[2][MAXD / 8 / ATT_BWD_WARPS][4] = {};
#pragma unroll
			for (int kk = 0; kk < ATT_BWD_BLOCK / 16; kk++) {
				unsigned a[2][4];
				fragA16(a[0], dS, sst, 0, kk * 16);
				fragA16(a[1], dS, sst, 16, kk * 16);
#pragma unroll
				for (int i = 0; i < MAXD / 8 / ATT_BWD_WARPS; i++) {
					int nt = warp + ATT_BWD_WARPS * i;
					unsigned bk[2];
					fragBT16(bk, Ks, st, kk * 16, nt * 8);
					mma16(dq[0][i], a[0], bk);
					mma16(dq[1][i], a[1], bk);
				}
			}
			addDQ<MAXD>(dq, hr.dQ, w, q0, T, D, scale);
		}
	}
	writeDKV<MAXD>(dk, dv, dqkv + (i64)b * T * w, w, H, KV, kv, wk, T, D, scale);
}

#if ATT_BF16
#define FORWARD_BODY attnForwardBodyBF16<ATT_MAXD>
#else
#define FORWARD_BODY attnForwardBody<ATT_MAXD, ATT_TC>
#endif
#if ATT_BF16 && ATT_MAXD <= 128 // at 256, its bfloat16 copies would take more shared memory than a block has
#define BACKWARD_BODY attnBackwardBodyBF16<ATT_MAXD>
#else
#define BACKWARD_BODY attnBackwardBody<ATT_MAXD, ATT_TC>
#endif

extern "C" {

// The entry points, compiled for one ATT_MAXD (head dims up to it: 128 covers every
// nanochat model) and one kind of product (ATT_TC 1: tensor cores; 0: strict float32;
// ATT_BF16 1: in bfloat16, but for the backward pass at head dims past 128, on TF32 tensor
// cores), which attention.go passes to NVRTC when a model first needs them. The training kernels take a
// fused q|k|v tensor of Batch×T rows of (H + 2·KV)·D, its output (Batch×T rows of H·D) and
// the (b, h, t) log-sum-exps; grids are (blocks of the sequence, Batch·H or Batch·KV).
__global__ void __launch_bounds__(32 * ATT_FWD_WARPS, 1) attnForward(const float* qkv, float* y, float* lse, i64 T, i64 H, i64 KV, i64 D, float scale) {
	i64 b = blockIdx.y / H, h = blockIdx.y % H, kv = h / (H / KV), w = (H + 2 * KV) * D;
	const float* base = qkv + b * T * w;
	FORWARD_BODY(base + h * D, w, base + (H + kv) * D, base + (H + KV + kv) * D, w,
	             y + b * T * H * D + h * D, H * D, lse + (b * H + h) * T, (int)T, (int)T, (int)D, scale);
}

// attnForwardCached: the Tq new queries of each row of a fused q|k|v tensor (Batch×Tq rows)
// against the first Tk positions of a KV cache laid out (Batch, KV, cap, D), the new ones
// stored; grid (blocks of the new queries, Batch·H).
__global__ void __launch_bounds__(32 * ATT_FWD_WARPS, 1) attnForwardCached(const float* qkv, const float* k, const float* v, float* y,
                                                                         float* lse, i64 Tq, i64 Tk, i64 H, i64 KV, i64 D, i64 cap,
                                                                         float scale) {
	i64 b = blockIdx.y / H, h = blockIdx.y % H, kv = h / (H / KV), w = (H + 2 * KV) * D, lane = (b * KV + kv) * cap * D;
	FORWARD_BODY(qkv + b * Tq * w + h * D, w, k + lane, v + lane, D, y + b * Tq * H * D + h * D, H * D,
	             lse + (b * H + h) * Tq, (int)Tq, (int)Tk, (int)D, scale);
}

__global__ void __launch_bounds__(32 * ATT_BWD_WARPS, 1) attnBackward(const float* qkv, const float* dy, const float* lse,
                                                                     const float* delta, float* dqkv, i64 T, i64 H, i64 KV, i64 D,
                                                                     float scale) {
	BACKWARD_BODY(qkv, dy, lse, delta, dqkv, (int)T, (int)H, (int)KV, (int)D, scale);
}

} // extern "C"
