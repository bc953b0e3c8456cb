package jsonlite

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
)

// TestFloat64: Number.Float64 is strconv.ParseFloat exactly where it says
// so (up to 15 digits times 10^-22 to 10^22, and every rate a config
// holds), and within a few units in the last place elsewhere.
func TestFloat64(t *testing.T) {
	exact := []string{
		"0", "-0", "1", "5", "0.5", "100", "1000000", "1000001", "0.001", "12.75", "-3.25", "1e6", "1E+6",
		"2.5e-3", "123456789012345", "0.1", "0.2", "0.3", "1e22", "1e-22", "9007199254740991", "1234e25",
		"1e-400", "0.000", "100e-2",
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		digits := strconv.FormatUint(r.Uint64N(1<<53), 10)
		frac := 0 // digits after the point
		if p := r.IntN(len(digits) + 1); p < len(digits) {
			frac = len(digits) - p
			digits = digits[:p] + "." + digits[p:]
			if digits[0] == '.' {
				digits = "0" + digits
			}
		}
		k := r.IntN(45) - 22 // the power of ten of the digits as a whole number
		exact = append(exact, digits, digits+"e"+strconv.Itoa(k+frac))
	}
	for _, s := range exact {
		want, werr := strconv.ParseFloat(s, 64)
		got, err := Number(s).Float64()
		if got != want || math.Signbit(got) != math.Signbit(want) || (err == nil) != (werr == nil) {
			t.Fatalf("%s: %v, %v; ParseFloat: %v, %v", s, got, err, want, werr)
		}
	}
	for _, s := range []string{
		"1e400", "-1e400", "1e309", "123456789012345678901234567890", "0.12345678901234567890123",
		"1.7976931348623157e308", "4.9e-324", "2.2250738585072014e-308", "1e-320", "98765432109876543e-40",
	} {
		want, werr := strconv.ParseFloat(s, 64)
		got, err := Number(s).Float64()
		if (err == nil) != (werr == nil) {
			t.Errorf("%s: error %v, ParseFloat's %v", s, err, werr)
			continue
		}
		if werr == nil && math.Abs(got-want) > 4*ulp(want) {
			t.Errorf("%s: %v, ParseFloat: %v", s, got, want)
		}
	}
}

func ulp(f float64) float64 {
	return math.Abs(math.Nextafter(f, math.Inf(1)) - f)
}
