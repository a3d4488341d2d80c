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
	if !a.adminToken(got[:]) {
		c.Header("WWW-Authenticate", `Bearer realm="portcullis-admin", error="invalid_token"`)
		a.writeError(c, errorf(http.StatusUnauthorized, CodeUnauthorized, "invalid admin token"))
		return
	}
	c.Next()
}

// adminToken reports whether digest is this node's admin token's or one of
// the admin credentials replicated to every node (a cluster's first node
// puts its own there, so its token works on every member).
func (a *API) adminToken(digest []byte) bool {
	ok := subtle.ConstantTimeCompare(digest, a.adminDigest[:]) == 1
	for _, c := range a.cfg.Store.Current().Admins {
		ok = subtle.ConstantTimeCompare(digest, c.Hash) == 1 || ok
	}
	return ok
}
