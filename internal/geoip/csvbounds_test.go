package geoip

import (
	"strings"
	"testing"
)

// A bad field of a CSV upload is quoted in the error (which the admin API
// returns and logs) only in part, and a huge number field is refused without
// parsing it.
func TestCSVErrorsQuoteBadFieldsBriefly(t *testing.T) {
	huge := strings.Repeat("9", 4<<20)
	for name, tc := range map[string]struct {
		parse func(string) error
		csv   string
	}{
		"dbip start":    {dbip, "1.2.3.4,1.2.3.5,DE\n" + huge + ",1.2.3.4,DE\n"},
		"dbip end":      {dbip, "1.2.3.4," + huge + ",DE\n"},
		"dbip country":  {dbip, "1.2.3.4,1.2.3.5," + huge + "\n"},
		"ip2l from":     {ip2l, "1,2,DE\n" + huge + ",2,DE\n"},
		"ip2l to":       {ip2l, "1," + huge + ",DE\n"},
		"ip2l country":  {ip2l, "1,2," + huge + "\n"},
		"ip2l negative": {ip2l, "1,2,DE\n-5,2,DE\n"},
	} {
		t.Run(name, func(t *testing.T) {
			err := tc.parse(tc.csv)
			if err == nil {
				t.Fatal("accepted")
			}
			if len(err.Error()) > 300 {
				t.Fatalf("error is %d bytes long: %.200s...", len(err.Error()), err)
			}
		})
	}
	// Leading zeros still parse.
	if _, err := ParseIP2LocationCSV(strings.NewReader("0000000001,00002,DE\n")); err != nil {
		t.Fatal(err)
	}
}

func dbip(s string) error { _, err := ParseDBIPCSV(strings.NewReader(s)); return err }
func ip2l(s string) error { _, err := ParseIP2LocationCSV(strings.NewReader(s)); return err }
