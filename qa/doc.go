// Package qa holds Portcullis's end-to-end, fault, browser, load and
// performance suites. Tests here build and run the real binary as a user
// would; sub-packages hold the suites of one area each.
package qa
