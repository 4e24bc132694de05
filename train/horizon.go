package train

import (
	"fmt"
	"math"
)

// calibrationSteps are the steps a time-budgeted run times before it fixes its horizon.
const calibrationSteps = 5

// pace is the wall time per step after the first, bookkeeping included and evaluations left
// out, from which a time budget fixes the horizon.
func (b *baseRun) pace(step int) float64 {
	return (b.since(b.paceStart) - b.paceEvals) / float64(step-b.first)
}

// refineHorizon, after step, fixes a time budget's horizon once the first steps are timed,
// and refines it after each evaluation while the learning rate is still flat (so that no
// step taken would change); a run with a horizon in steps says how long it will take. The
// ranks of a distributed run, whose clocks differ, take the longest horizon any of them
// finds.
func (b *baseRun) refineHorizon(step int) error {
	s, plan := b.Settings, b.plan
	budgeted := s.NumIterations <= 0 && s.TargetFLOPs <= 0 && s.TimeBudget > 0
	evaluated := b.evalEvery > 0 && step > b.first && step%b.evalEvery == 0
	switch {
	case budgeted && (plan.NumIterations == 0 && step+1-b.first >= calibrationSteps || evaluated && step+1 <= s.flatUntil(plan.NumIterations)):
		stepSeconds := b.pace(step)
		if b.evalSeconds == 0 { // not measured yet: a forward pass is about a third of a step's work
			b.evalSeconds = float64(plan.EvalSteps) * stepSeconds / float64(3*plan.GradAccum)
		}
		left := b.deadline.Sub(b.now()).Seconds()
		every := b.evalEvery
		if plan.NumIterations == 0 && s.Evals > 0 { // the first horizon spreads the evaluations
			every = s.evalEvery(fixHorizon(step+1, left, stepSeconds, b.evalSeconds, 0))
		}
		n := fixHorizon(step+1, left, stepSeconds, b.evalSeconds, every)
		if err := b.ranks().largest(&n, &every); err != nil {
			return err
		}
		if n != plan.NumIterations && step+1 <= s.flatUntil(n) {
			b.plan.NumIterations, b.evalEvery = n, every
			b.res.Plan, b.trainer.Recipe.NumIterations = b.plan, n
			fmt.Fprintf(b.Log, "time budget: %.0f s left at %.0f ms a step: %d steps in all\n", left, 1000*stepSeconds, n)
		}
	case !budgeted && step+1-b.first == calibrationSteps && plan.NumIterations > step+1:
		stepSeconds := b.pace(step)
		fmt.Fprintf(b.Log, "at %.0f ms a step, the %d steps left take about %s (evaluations aside)\n",
			1000*stepSeconds, plan.NumIterations-step-1, Duration(stepSeconds*float64(plan.NumIterations-step-1)))
	}
	return nil
}

// evalEvery is the number of steps between evaluations of an n-step run: EvalEvery, or with
// Evals that many evaluations spread over the run. Before a time budget has fixed the
// horizon (n = 0), Evals evaluates step 0 only.
func (s Settings) evalEvery(n int) int {
	switch {
	case s.Evals <= 0:
		return s.EvalEvery
	case n == 0:
		return math.MaxInt32
	}
	return max(1, n/s.Evals)
}

// flatUntil is the last step at which the learning rate of an n-step run is still the
// initial one (no warmup with a time budget; the warmdown takes the end).
func (s Settings) flatUntil(n int) int { return n - int(math.Round(s.WarmdownRatio*float64(n))) }

// fixHorizon turns the time left into a step count: each further step costs dt, plus an
// evaluation (evalSeconds) every evalEvery steps and one at the end.
func fixHorizon(done int, secondsLeft, dt, evalSeconds float64, evalEvery int) int {
	perStep := dt
	if evalEvery > 0 {
		perStep += evalSeconds / float64(evalEvery)
	}
	more := int((secondsLeft - evalSeconds) / perStep)
	return done + max(more, 1)
}
