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
	c.Set(ctxTokenID, tokenID(got))
	id, ok := a.adminIdentity(got[:])
	if !ok {
		c.Header("WWW-Authenticate", `Bearer realm="portcullis-admin", error="invalid_token"`)
		a.writeError(c, errorf(http.StatusUnauthorized, CodeUnauthorized, "invalid admin token"))
		return
	}
	c.Set(ctxAdminIdentity, id)
	c.Next()
}

// adminIdentity reports whether digest is this node's admin token's or one
// of the admin credentials replicated to every node (a cluster's first node
// puts its own there, so its token works on every member), and names it:
// the matching replicated credential's id, else "admin@local".
func (a *API) adminIdentity(digest []byte) (string, bool) {
	ok := subtle.ConstantTimeCompare(digest, a.adminDigest[:]) == 1
	id := ""
	for _, c := range a.cfg.Store.Current().Admins {
		if subtle.ConstantTimeCompare(digest, c.Hash) == 1 {
			ok, id = true, c.ID
		}
	}
	if ok && id == "" {
		id = "admin@local"
	}
	return id, ok
}
