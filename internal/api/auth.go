package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
)

// tokenDigest hashes a token so comparisons take the same time whatever
// the length of the presented token.
func tokenDigest(token string) [sha256.Size]byte { return sha256.Sum256([]byte(token)) }

// requireAdmin rejects requests without the admin bearer token. The
// comparison is constant-time; the token never appears in a log or an
// error.
func (a *API) requireAdmin(c *gin.Context) {
	h := c.GetHeader("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		c.Header("WWW-Authenticate", `Bearer realm="portcullis-admin"`)
		a.writeError(c, errorf(http.StatusUnauthorized, CodeUnauthorized,
			"missing admin token: send Authorization: Bearer <admin token>"))
		return
	}
	got := tokenDigest(strings.TrimSpace(token))
	if subtle.ConstantTimeCompare(got[:], a.adminDigest[:]) != 1 {
		c.Header("WWW-Authenticate", `Bearer realm="portcullis-admin", error="invalid_token"`)
		a.writeError(c, errorf(http.StatusUnauthorized, CodeUnauthorized, "invalid admin token"))
		return
	}
	c.Next()
}
