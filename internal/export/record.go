package export

import (
	"github.com/portcullis-gw/portcullis/internal/audit"
	"github.com/portcullis-gw/portcullis/internal/gateway"
)

// recordOf is a decision as syslog (JSON format) and the webhook send it:
// the audit trail's record (audit.Record) without the trail's sequence
// number, which only the trail assigns. Never a value the request
// carried: DLP findings are counts by detector id.
func recordOf(d *gateway.Decision, node string) audit.Record { return audit.RecordOf(d, node) }
