package benchmarks_test

import (
	"fmt"
	"time"

	"gochat/benchmarks"
	"gochat/cpubackend"
)

// The CPU engine's rate at a small product.
func ExampleGemmGFLOPs() {
	rate := benchmarks.GemmGFLOPs(cpubackend.New(nil), 64, 64, 64, 10*time.Millisecond)
	fmt.Println(rate > 0)
	// Output: true
}
