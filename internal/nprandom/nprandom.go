// Package nprandom is numpy's default_rng: PCG64 seeded through a SeedSequence from an
// integer, and Generator.permutation, which HuggingFace datasets' shuffle(seed=…) uses, so
// that gochat reads a dataset in the order nanochat's load_dataset(…).shuffle(seed=42)
// gives it.
package nprandom

import "math/bits"

// SeedSequence constants (numpy/random/bit_generator.pyx).
const (
	poolSize = 4
	initA    = 0x43b0d7e5
	multA    = 0x931e8875
	initB    = 0x8b51f9dd
	multB    = 0x58f38ded
	mixMultL = 0xca01f9dd
	mixMultR = 0x4973f715
	xshift   = 16
)

// seedState is SeedSequence(seed).generate_state(words, uint32): numpy's entropy pool,
// mixed from the seed's 32-bit words, then hashed out.
func seedState(seed uint64, words int) []uint32 {
	entropy := []uint32{uint32(seed)}
	if hi := uint32(seed >> 32); hi != 0 {
		entropy = append(entropy, hi)
	}
	hashConst := uint32(initA)
	hashmix := func(v uint32) uint32 {
		v ^= hashConst
		hashConst *= multA
		v *= hashConst
		return v ^ v>>xshift
	}
	mix := func(x, y uint32) uint32 {
		r := mixMultL*x - mixMultR*y
		return r ^ r>>xshift
	}
	var pool [poolSize]uint32
	for i := range pool {
		var v uint32
		if i < len(entropy) {
			v = entropy[i]
		}
		pool[i] = hashmix(v)
	}
	for src := range pool {
		for dst := range pool {
			if src != dst {
				pool[dst] = mix(pool[dst], hashmix(pool[src]))
			}
		}
	}
	state := make([]uint32, words)
	hashConst = initB
	for i := range state {
		v := pool[i%poolSize] ^ hashConst
		hashConst *= multB
		v *= hashConst
		state[i] = v ^ v>>xshift
	}
	return state
}

// PCG64 is numpy's PCG64 (XSL-RR 128/64), with the 32-bit half it keeps for next32.
type PCG64 struct {
	hi, lo       uint64 // the 128-bit state
	incHi, incLo uint64
	half         uint32
	hasHalf      bool
}

// pcg64's multiplier, 2549297995355413924·2^64 + 4865540595714422341.
const mulHi, mulLo = 2549297995355413924, 4865540595714422341

// DefaultRNG is numpy.random.default_rng(seed)'s bit generator.
func DefaultRNG(seed uint64) *PCG64 {
	s := seedState(seed, 8)
	w := func(i int) uint64 { return uint64(s[2*i]) | uint64(s[2*i+1])<<32 } // generate_state(4, uint64)
	p := &PCG64{}
	// pcg_setseq_128_srandom_r(initstate = w0·2^64 + w1, initseq = w2·2^64 + w3).
	p.incHi, p.incLo = w(2)<<1|w(3)>>63, w(3)<<1|1
	p.step()
	var carry uint64
	p.lo, carry = bits.Add64(p.lo, w(1), 0)
	p.hi, _ = bits.Add64(p.hi, w(0), carry)
	p.step()
	return p
}

// step is state ← state·multiplier + inc, modulo 2^128.
func (p *PCG64) step() {
	hi, lo := bits.Mul64(p.lo, mulLo)
	hi += p.hi*mulLo + p.lo*mulHi
	var carry uint64
	p.lo, carry = bits.Add64(lo, p.incLo, 0)
	p.hi, _ = bits.Add64(hi, p.incHi, carry)
}

// Uint64 is the next 64-bit output: a step, then the XSL-RR of the new state.
func (p *PCG64) Uint64() uint64 {
	p.step()
	return bits.RotateLeft64(p.hi^p.lo, -int(p.hi>>58))
}

// Uint32 is next32: the low half of a 64-bit output, its high half kept for the next call.
func (p *PCG64) Uint32() uint32 {
	if p.hasHalf {
		p.hasHalf = false
		return p.half
	}
	next := p.Uint64()
	p.half, p.hasHalf = uint32(next>>32), true
	return uint32(next)
}

// interval is random_interval(max): a uniform integer in [0, max] by masked rejection, from
// 32-bit draws when max fits 32 bits.
func (p *PCG64) interval(max uint64) uint64 {
	if max == 0 {
		return 0
	}
	mask := max
	for s := uint(1); s <= 32; s <<= 1 {
		mask |= mask >> s
	}
	if max <= 0xffffffff {
		for {
			if v := uint64(p.Uint32()) & mask; v <= max {
				return v
			}
		}
	}
	for {
		if v := p.Uint64() & mask; v <= max {
			return v
		}
	}
}

// Permutation is Generator.permutation(n): 0..n−1 shuffled as Generator.shuffle does,
// Fisher-Yates from the end.
func (p *PCG64) Permutation(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	for i := n - 1; i > 0; i-- {
		j := p.interval(uint64(i))
		out[i], out[j] = out[j], out[i]
	}
	return out
}
