//go:build linux

package cudabackend

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestKernelsCompile compiles the CUDA sources to PTX with clang, each in every variant the
// engine builds with NVRTC (attention.cu for each head-dim bound and precision),
// against testdata/nvrtc.h for what NVRTC declares, and checks that each kernel the engine
// loads is in the PTX under its own name: so that a mistake in a kernel shows on a machine
// with no GPU, before a GPU machine's time is spent on it. It skips where clang is missing
// unless GOCHAT_REQUIRE_CLANG is set (CI installs it).
func TestKernelsCompile(t *testing.T) {
	clang, err := exec.LookPath("clang++")
	if err != nil {
		if os.Getenv("GOCHAT_REQUIRE_CLANG") != "" {
			t.Fatal(err)
		}
		t.Skip("no clang++ here")
	}
	stub, err := filepath.Abs("testdata/nvrtc.h")
	if err != nil {
		t.Fatal(err)
	}
	type variant struct {
		source  string
		options []string
		kernels []string
	}
	variants := []variant{{"kernels.cu", kernelOptions(), kernelNames}}
	for _, bound := range []int{attnBound(1), attnBound(256)} {
		for _, prec := range []Precision{FP32, TF32, BF16} {
			variants = append(variants, variant{"attention.cu", attentionOptions(bound, prec), attentionKernels})
		}
	}
	for _, v := range variants {
		ptx := filepath.Join(t.TempDir(), "out.ptx")
		// sm_80: the oldest architecture whose tensor-core paths the sources take, and one
		// clang 14 (Debian 12's) knows.
		args := append([]string{"-x", "cuda", "--cuda-device-only", "--cuda-gpu-arch=sm_80", "-nocudainc", "-nocudalib",
			"-std=c++17", "-include", stub, "-S", "-o", ptx, v.source}, v.options...)
		if out, err := exec.Command(clang, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %v does not compile:\n%s", v.source, v.options, out)
		}
		text, err := os.ReadFile(ptx)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range v.kernels {
			if !strings.Contains(string(text), ".entry "+k+"(") {
				t.Errorf("%s %v: no kernel %s in the PTX (is it extern \"C\"?)", v.source, v.options, k)
			}
		}
	}
}
