package optimizers

import (
	"math/rand/v2"
	"testing"

	"gochat/backend"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// gonumGemm is backend.Gemm over gonum's kernels (the CPU engine imports this package).
type gonumGemm struct{}

func trans(t bool) blas.Transpose {
	if t {
		return blas.Trans
	}
	return blas.NoTrans
}

func (gonumGemm) Sgemm(tA, tB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	gonum.Implementation{}.Sgemm(trans(tA), trans(tB), m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

func (gonumGemm) Dgemm(tA, tB bool, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	gonum.Implementation{}.Dgemm(trans(tA), trans(tB), m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// TestNewtonSchulzWorkspace orthogonalises groups of matrices as Muon does, one call a
// shape, and checks the workspaces the host keeps against NewtonSchulzWorkspace: at least
// one for each orientation-free shape, never more bytes than it says.
func TestNewtonSchulzWorkspace(t *testing.T) {
	h := NewHostSteps(gonumGemm{})
	groups := []backend.MatrixGroup{{Rows: 8, Cols: 16, Count: 3}, {Rows: 16, Cols: 8, Count: 2}, {Rows: 4, Cols: 16, Count: 5}}
	r := rand.New(rand.NewPCG(1, 2))
	for _, g := range groups {
		ms := make([][]float32, g.Count)
		for i := range ms {
			ms[i] = make([]float32, g.Rows*g.Cols)
			for j := range ms[i] {
				ms[i][j] = r.Float32() - 0.5
			}
		}
		h.NewtonSchulz(ms, ms, g.Rows, g.Cols, NSSteps, nsA, nsB, nsC)
	}
	var kept uint64
	for key, ws := range h.work.free {
		if len(ws) == 0 {
			t.Errorf("no workspace kept for %v", key)
		}
		kept += uint64(len(ws)) * uint64(2*key[0]*key[1]+2*key[0]*key[0]) * 4
	}
	if planned := h.NewtonSchulzWorkspace(groups); len(h.work.free) != 2 || kept > planned || kept == 0 {
		t.Errorf("the host keeps %d bytes for %d shapes; the plan says %d", kept, len(h.work.free), planned)
	}
}
