// Package persona is the evaluation suite of the job-description → role
// drafter (internal/persona): a catalog of upstreams, tools and skills, job
// descriptions with ground truth, and the tests that measure precision and
// recall and enforce the rule that no unrequested ability is ever proposed.
package persona
