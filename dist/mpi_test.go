//go:build linux || darwin

package dist

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"gochat/internal/mpitest"
)

// rankEnv tells the test binary that it runs as one rank under mpirun, and which part.
const rankEnv = "GOCHAT_DIST_RANK_TEST"

// TestMPI runs TestMPIRank on two ranks under mpirun: every collective against the values
// each rank can compute for itself.
func TestMPI(t *testing.T) {
	if os.Getenv(rankEnv) != "" {
		t.Skip("a rank of TestMPI")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, np := range []int{1, 2, 3} {
		out, err := mpitest.Self(t, ctx, np, "TestMPIRank", rankEnv+"=collectives").CombinedOutput()
		if err != nil {
			t.Fatalf("mpirun -np %d: %v\n%s", np, err, out)
		}
		if got := strings.Count(string(out), "collectives ok"); got != np {
			t.Fatalf("mpirun -np %d: %d ranks reported their collectives correct\n%s", np, got, out)
		}
	}
}

// TestMPIStall: a rank that never arrives at a collective makes the others give up within
// their timeout, with a message naming the collective, and the job ends.
func TestMPIStall(t *testing.T) {
	if os.Getenv(rankEnv) != "" {
		t.Skip("a rank of TestMPIStall")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, how := range []string{"hang", "die"} {
		out, err := mpitest.Self(t, ctx, 2, "TestMPIRank", rankEnv+"="+how).CombinedOutput()
		if ctx.Err() != nil {
			t.Fatalf("%s: the job did not end: %s", how, out)
		}
		if err == nil {
			t.Fatalf("%s: the job succeeded with a rank that %ss\n%s", how, how, out)
		}
		switch how {
		case "hang":
			if !strings.Contains(string(out), "rank 0 of 2: all-reduce waited 2s for the other ranks") {
				t.Fatalf("hang: rank 0 did not say why it ended:\n%s", out)
			}
		case "die":
			if strings.Contains(string(out), "collectives ok") {
				t.Fatalf("die: a collective finished without the dead rank:\n%s", out)
			}
		}
	}
}

// TestMPIRank is one rank of TestMPI and TestMPIStall.
func TestMPIRank(t *testing.T) {
	part := os.Getenv(rankEnv)
	if part == "" {
		t.Skip("run by TestMPI under mpirun")
	}
	c, err := OpenMPI(2 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	r, n := c.Rank(), c.Size()
	switch part {
	case "hang":
		if r == 1 {
			time.Sleep(time.Minute) // mpirun ends it when rank 0 gives up
		}
	case "die":
		if r == 1 {
			os.Exit(3)
		}
	}
	if err := checkCollectives(c); err != nil {
		t.Fatalf("rank %d of %d: %v", r, n, err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("rank %d: collectives ok\n", r)
}

// checkCollectives runs each collective on values that depend on the rank and checks the
// result against the sum, maximum or concatenation computed here.
func checkCollectives(c Comm) error {
	r, n := c.Rank(), c.Size()
	value := func(rank, i int) float32 { return float32(rank*1000 + i) }
	x := make([]float32, 7)
	for i := range x {
		x[i] = value(r, i)
	}
	if err := c.AllReduce(x); err != nil {
		return err
	}
	for i, v := range x {
		var want float32
		for k := range n {
			want += value(k, i)
		}
		if v != want {
			return fmt.Errorf("all-reduce [%d] = %g, want %g", i, v, want)
		}
	}
	const part = 5
	send := make([]float32, n*part)
	for i := range send {
		send[i] = value(r, i)
	}
	recv := make([]float32, part)
	if err := c.ReduceScatter(send, recv); err != nil {
		return err
	}
	for i, v := range recv {
		var want float32
		for k := range n {
			want += value(k, r*part+i)
		}
		if v != want {
			return fmt.Errorf("reduce-scatter [%d] = %g, want %g", i, v, want)
		}
	}
	mine := []float32{value(r, 0), value(r, 1), value(r, 2)}
	all := make([]float32, 3*n)
	if err := c.AllGather(mine, all); err != nil {
		return err
	}
	for i, v := range all {
		if want := value(i/3, i%3); v != want {
			return fmt.Errorf("all-gather [%d] = %g, want %g", i, v, want)
		}
	}
	sum, most := []float64{float64(r) + 0.5, 1}, []float64{float64(r), -float64(r)}
	if err := c.SumHost(sum); err != nil {
		return err
	}
	if err := c.MaxHost(most); err != nil {
		return err
	}
	if want := float64(n*(n-1))/2 + 0.5*float64(n); sum[0] != want || sum[1] != float64(n) {
		return fmt.Errorf("host sum = %v, want [%g %d]", sum, want, n)
	}
	if most[0] != float64(n-1) || most[1] != 0 {
		return fmt.Errorf("host maximum = %v, want [%d 0]", most, n-1)
	}
	got, err := Exchange(c, []byte(strings.Repeat("r", r+1)))
	if err != nil {
		return err
	}
	for k, b := range got {
		if string(b) != strings.Repeat("r", k+1) {
			return fmt.Errorf("exchange: rank %d's bytes are %q", k, b)
		}
	}
	if yes, err := Agree(c, r == n-1); err != nil || !yes {
		return fmt.Errorf("agree: %v, %v; the last rank said yes", yes, err)
	}
	if yes, err := Agree(c, false); err != nil || yes {
		return fmt.Errorf("agree: %v, %v; no rank said yes", yes, err)
	}
	if err := CheckSame(c, "depth", []byte("12")); err != nil {
		return err
	}
	err = CheckSame(c, "depth", []byte(fmt.Sprint(r)))
	if n > 1 && (err == nil || !strings.Contains(err.Error(), "rank 1's depth (1) differs from rank 0's (0)")) {
		return fmt.Errorf("check same: %v for depths that differ", err)
	}
	return nil
}
