package dlp

import (
	"math/rand/v2"
)

func npiValid(n []byte) bool {
	if n[0] != '1' && n[0] != '2' {
		return false
	}
	var buf [15]byte
	copy(buf[:], "80840")
	copy(buf[5:], n)
	return luhn(buf[:])
}

func deaValid(n []byte) bool {
	if !bytesIn(n[0], "ABCDEFGHJKLMPRSTUX") || !(isUpper(n[1]) || n[1] == '9') || !allDigits(n[2:]) {
		return false
	}
	d := n[2:]
	s := dv(d[0]) + dv(d[2]) + dv(d[4]) + 2*(dv(d[1])+dv(d[3])+dv(d[5]))
	return s%10 == dv(d[6])
}

const mbiLetters = "ACDEFGHJKMNPQRTUVWXY"

func mbiValid(n []byte) bool {
	if len(n) != 11 {
		return false
	}
	letter := func(c byte) bool { return bytesIn(c, mbiLetters) }
	alnum := func(c byte) bool { return isDigit(c) || letter(c) }
	return n[0] >= '1' && n[0] <= '9' && letter(n[1]) && alnum(n[2]) && isDigit(n[3]) &&
		letter(n[4]) && alnum(n[5]) && isDigit(n[6]) && letter(n[7]) && letter(n[8]) && isDigit(n[9]) && isDigit(n[10])
}

func genMBI(r *rand.Rand) string {
	l := func() string { return fromSet(r, mbiLetters, 1) }
	a := func() string { return fromSet(r, setDigits+mbiLetters, 1) }
	return fromSet(r, "123456789", 1) + l() + a() + digits(r, 1) + l() + a() + digits(r, 1) + l() + l() + digits(r, 2)
}

func icd10Value(v []byte) float64 {
	if len(v) < 3 || len(v) > 8 || !isUpper(v[0]) || v[0] == 'U' || !isDigit(v[1]) || !(isDigit(v[2]) || v[2] == 'A' || v[2] == 'B') {
		return 0
	}
	if len(v) == 3 {
		return 0.8
	}
	if v[3] != '.' || len(v) < 5 {
		return 0
	}
	for _, c := range v[4:] {
		if !isDigit(c) && !isUpper(c) {
			return 0
		}
	}
	return 0.8
}

var icd10KW = kwValue(32, icd10Value)

func init() {
	register(&Detector{
		ID: "us-npi", Category: PHI, Tags: tags(TagHIPAA), Description: "US National Provider Identifier (Luhn with the 80840 prefix)",
		Confidence: 0.75, Context: []string{"npi", "provider", "prescriber", "physician", "nppes", "clinician"},
		minLen: 10, maxLen: 10, digitsOnly: true,
		group: func(c *cand) float64 {
			if len(c.raw) != 10 || !npiValid(c.norm) {
				return 0
			}
			return 0.4
		},
		gen: func(r *rand.Rand) (string, string) {
			return pick(r, "NPI: ", "provider npi "), fill(r, func() string { return pick(r, "1", "2") + digits(r, 9) }, npiValid)
		},
		near: func(r *rand.Rand) string {
			return "NPI: " + fill(r, func() string { return "1" + digits(r, 9) }, func(n []byte) bool { return !npiValid(n) })
		},
	})
	register(&Detector{
		ID: "us-dea", Category: PHI, Tags: tags(TagHIPAA), Description: "US DEA registration number (registrant type, checksum)",
		Confidence: 0.75, Context: []string{"dea", "prescriber", "registration"},
		minLen: 9, maxLen: 9,
		group: func(c *cand) float64 {
			if len(c.raw) != 9 || !deaValid(c.norm) {
				return 0
			}
			return 0.6
		},
		gen: func(r *rand.Rand) (string, string) {
			return "DEA ", fill(r, func() string { return pick(r, "A", "B", "F", "M") + fromSet(r, setUpper, 1) + digits(r, 7) }, deaValid)
		},
		near: func(r *rand.Rand) string {
			return "DEA " + fill(r, func() string { return "AB" + digits(r, 7) }, func(n []byte) bool { return !deaValid(n) })
		},
	})
	register(&Detector{
		ID: "us-mbi", Category: PHI, Tags: tags(TagHIPAA), Description: "US Medicare Beneficiary Identifier (position rules)",
		Confidence: 0.85, Context: []string{"mbi", "medicare", "beneficiary"},
		minLen: 11, maxLen: 11,
		group: func(c *cand) float64 {
			if !mbiValid(c.norm) {
				return 0
			}
			if len(c.raw) == 11 || shape(c.raw, "xxxx-xxx-xxxx") {
				return 0.85
			}
			return 0
		},
		gen: func(r *rand.Rand) (string, string) {
			v := genMBI(r)
			if r.IntN(2) == 0 {
				v = v[:4] + "-" + v[4:7] + "-" + v[7:]
			}
			return "MBI ", v
		},
		near: fixedNear("MBI 0EG4TE5MK73", "MBI 1SG4TE5MK73", "MBI 1EG4TE5MKB3"),
	})
	register(&Detector{
		ID: "icd10-code", Category: PHI, Tags: tags(TagHIPAA), Description: "ICD-10 diagnosis code, next to a diagnosis keyword",
		Confidence: 0.8, keywords: []string{"icd", "icd10", "diagnosis", "dx", "diagnosed", "diagnoses", "diag"},
		kw: func(b []byte, from int) (int, int, float64) {
			// "ICD-10 E11.9", "ICD10: E11.9"
			if from+3 <= len(b) && string(b[from:from+3]) == "-10" {
				from += 3
			} else if from+2 <= len(b) && string(b[from:from+2]) == "10" {
				from += 2
			}
			return icd10KW(b, from)
		},
		gen: func(r *rand.Rand) (string, string) {
			return pick(r, "diagnosis: ", "ICD-10 ", "\"dx\": \""), pick(r, "E11.9", "J45.909", "F32.A", "I10", "C50.911", "Z79.4")
		},
		near: fixedNear("diagnosis: pending", "ICD-10 U07", "dx 1E11.9"),
	})
	register(&Detector{
		ID: "medical-record-number", Category: PHI, Tags: tags(TagHIPAA), Description: "Medical record number, next to its keyword",
		Confidence: 0.75, keywords: []string{"mrn", "medical", "medicalrecord", "medicalrecordnumber", "chart"},
		kw: kwValue(40, func(v []byte) float64 {
			if !allIn(v, func(c byte) bool { return isAlnum(c) || c == '-' }) || shape(v[:min(len(v), 5)], "dddd-") {
				return 0
			}
			n := normAlnum(v)
			if len(n) < 6 || len(n) > 12 {
				return 0
			}
			dg := 0
			for _, c := range n {
				if isDigit(c) {
					dg++
				}
			}
			if dg < 5 || !allIn(n, func(c byte) bool { return isDigit(c) || isUpper(c) }) {
				return 0
			}
			return 0.75
		}),
		gen: func(r *rand.Rand) (string, string) {
			return pick(r, "MRN: ", "medical record number ", "\"mrn\": \""), pick(r, digits(r, 8), "MR"+digits(r, 7))
		},
		near: fixedNear("MRN: pending", "medical advice 12", "mrn: 1234"),
	})
	register(&Detector{
		ID: "ndc-code", Category: PHI, Tags: tags(TagHIPAA), Description: "US National Drug Code (4-4-2, 5-3-2, 5-4-1), next to its keyword",
		Confidence: 0.8, keywords: []string{"ndc"},
		kw: kwValue(24, func(v []byte) float64 {
			if shape(v, "dddd-dddd-dd", "ddddd-ddd-dd", "ddddd-dddd-d", "ddddd-dddd-dd") {
				return 0.8
			}
			return 0
		}),
		gen: func(r *rand.Rand) (string, string) {
			return "NDC ", digits(r, 5) + "-" + digits(r, 4) + "-" + digits(r, 1)
		},
		near: fixedNear("NDC 1234-56-78", "NDC pending"),
	})
}
