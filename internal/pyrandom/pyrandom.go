// Package pyrandom is CPython's random.Random: the Mersenne Twister MT19937 seeded from an
// integer as CPython seeds it (init_by_array over the integer's 32-bit words), getrandbits,
// randbelow and shuffle, so that gochat picks what nanochat's Python picks for the same
// seed: the order of a task mixture, the items and few-shot examples of an evaluation.
package pyrandom

import (
	"math"
	"math/bits"
)

const (
	n         = 624
	m         = 397
	matrixA   = 0x9908b0df
	upperMask = 0x80000000
	lowerMask = 0x7fffffff
)

// Rand is one generator, as random.Random(seed) makes it.
type Rand struct {
	mt  [n]uint32
	mti int
}

// New returns the generator of random.Random(seed).
func New(seed uint64) *Rand {
	// CPython seeds from abs(seed) split into 32-bit words, least significant first (at
	// least one word, so that 0 seeds from [0]).
	key := []uint32{uint32(seed)}
	if hi := uint32(seed >> 32); hi != 0 {
		key = append(key, hi)
	}
	r := &Rand{}
	r.initByArray(key)
	return r
}

func (r *Rand) initGenrand(s uint32) {
	r.mt[0] = s
	for i := 1; i < n; i++ {
		r.mt[i] = 1812433253*(r.mt[i-1]^(r.mt[i-1]>>30)) + uint32(i)
	}
	r.mti = n
}

func (r *Rand) initByArray(key []uint32) {
	r.initGenrand(19650218)
	i, j := 1, 0
	for k := max(n, len(key)); k > 0; k-- {
		r.mt[i] = (r.mt[i] ^ ((r.mt[i-1] ^ (r.mt[i-1] >> 30)) * 1664525)) + key[j] + uint32(j)
		i, j = i+1, j+1
		if i >= n {
			r.mt[0], i = r.mt[n-1], 1
		}
		if j >= len(key) {
			j = 0
		}
	}
	for k := n - 1; k > 0; k-- {
		r.mt[i] = (r.mt[i] ^ ((r.mt[i-1] ^ (r.mt[i-1] >> 30)) * 1566083941)) - uint32(i)
		if i++; i >= n {
			r.mt[0], i = r.mt[n-1], 1
		}
	}
	r.mt[0] = 0x80000000
}

// Uint32 is genrand_uint32: the next 32 bits of the stream.
func (r *Rand) Uint32() uint32 {
	if r.mti >= n {
		for k := range n {
			y := r.mt[k]&upperMask | r.mt[(k+1)%n]&lowerMask
			next := r.mt[(k+m)%n] ^ y>>1
			if y&1 != 0 {
				next ^= matrixA
			}
			r.mt[k] = next
		}
		r.mti = 0
	}
	y := r.mt[r.mti]
	r.mti++
	y ^= y >> 11
	y ^= y << 7 & 0x9d2c5680
	y ^= y << 15 & 0xefc60000
	return y ^ y>>18
}

// GetRandBits is random.getrandbits(k) for 0 < k ≤ 64: k bits, the first 32-bit word the
// least significant, each word's top bits taken when fewer than 32 are wanted.
func (r *Rand) GetRandBits(k int) uint64 {
	if k <= 32 {
		return uint64(r.Uint32() >> (32 - k))
	}
	lo := uint64(r.Uint32())
	return lo | uint64(r.Uint32()>>(64-k))<<32
}

// Below is random._randbelow(n) for n > 0: getrandbits of n's bit length until below n.
func (r *Rand) Below(n int) int {
	k := bits.Len(uint(n))
	for {
		if v := r.GetRandBits(k); v < uint64(n) {
			return int(v)
		}
	}
}

// Shuffle is random.shuffle: Fisher-Yates from the end, as CPython draws it; swap exchanges
// elements i and j.
func (r *Rand) Shuffle(count int, swap func(i, j int)) {
	for i := count - 1; i > 0; i-- {
		swap(i, r.Below(i+1))
	}
}

// Sample is random.sample(range(n), k): k distinct indices of [0, n) in selection order
// (random.sample(population, k) picks population[i] for each),
// with CPython's two strategies (a shrinking pool for small n, rejection from a set for
// large n) and its rule for choosing between them. 0 ≤ k ≤ n.
func (r *Rand) Sample(n, k int) []int {
	out := make([]int, k)
	setsize := 21
	if k > 5 {
		setsize += int(math.Pow(4, math.Ceil(math.Log(float64(k*3))/math.Log(4))))
	}
	if n <= setsize {
		pool := make([]int, n)
		for i := range pool {
			pool[i] = i
		}
		for i := range k {
			j := r.Below(n - i)
			out[i] = pool[j]
			pool[j] = pool[n-i-1]
		}
		return out
	}
	selected := map[int]bool{}
	for i := range k {
		j := r.Below(n)
		for selected[j] {
			j = r.Below(n)
		}
		selected[j] = true
		out[i] = j
	}
	return out
}
