package train

import "fmt"

// Duration writes seconds the way a person plans with them: "40 s", "12 min", "5.1 hours",
// "3.2 days", "2.1 years".
func Duration(seconds float64) string {
	switch {
	case seconds < 90:
		return fmt.Sprintf("%.0f s", seconds)
	case seconds < 90*60:
		return fmt.Sprintf("%.0f min", seconds/60)
	case seconds < 48*3600:
		return fmt.Sprintf("%.1f hours", seconds/3600)
	case seconds < 730*86400:
		return fmt.Sprintf("%.1f days", seconds/86400)
	}
	return fmt.Sprintf("%.1f years", seconds/(365.25*86400))
}
