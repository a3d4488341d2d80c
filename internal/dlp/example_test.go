package dlp_test

import (
	"fmt"

	"github.com/portcullis-gw/portcullis/internal/dlp"
)

func ExampleScanner_ScanJSON() {
	s, err := dlp.New(dlp.Config{})
	if err != nil {
		panic(err)
	}
	doc := []byte(`{"customer":{"ssn":"536221846","card":4111111111111111,"note":"call +44 20 7946 0958"}}`)
	fs, err := s.ScanJSON(doc)
	if err != nil {
		panic(err)
	}
	for _, f := range fs {
		fmt.Printf("%s %s %q\n", f.Detector, f.Path, doc[f.Start:f.End])
	}
	// Output:
	// us-ssn $.customer.ssn "536221846"
	// card-visa $.customer.card "4111111111111111"
	// phone-intl $.customer.note "+44 20 7946 0958"
}

func ExampleEngine_Apply() {
	policy, err := dlp.ParsePolicy([]byte(`[
		{"categories": ["pci", "secrets"], "direction": "both", "action": "redact"},
		{"categories": ["pii"], "direction": "response", "action": "mask", "keepTail": 4}
	]`))
	if err != nil {
		panic(err)
	}
	e, err := dlp.NewEngine(dlp.EngineConfig{Policy: policy})
	if err != nil {
		panic(err)
	}
	out, v, err := e.Apply(dlp.Response, []byte(`{"card":"4111 1111 1111 1111","phone":"+1 415 555 2671"}`))
	if err != nil {
		panic(err)
	}
	fmt.Println(v.Decision)
	fmt.Println(string(out))
	for _, r := range v.Reasons {
		fmt.Println(r)
	}
	// Output:
	// modify
	// {"card":"[REDACTED:card-visa]","phone":"+* *** *** 2671"}
	// redact card-visa (pci) at $.card
	// mask phone-intl (pii) at $.phone
}
