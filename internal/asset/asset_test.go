package asset

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestFileRevalidates: the file with its headers, then 304 without a body
// to a request that names its ETag, and the whole file again for a
// changed one.
func TestFileRevalidates(t *testing.T) {
	f := New("a.js", "text/javascript; charset=utf-8", []byte("export const a = 1;\n"))
	other := New("a.js", "text/javascript; charset=utf-8", []byte("export const a = 2;\n"))
	rec := httptest.NewRecorder()
	f.Serve(rec, httptest.NewRequest(http.MethodGet, "/a.js", nil))
	etag := rec.Header().Get("ETag")
	if rec.Code != 200 || rec.Body.String() != "export const a = 1;\n" || etag == "" ||
		rec.Header().Get("Content-Type") != "text/javascript; charset=utf-8" || rec.Header().Get("Cache-Control") != "no-cache" ||
		rec.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("%d %v %q", rec.Code, rec.Header(), rec.Body)
	}
	for _, tt := range []struct {
		file   *File
		status int
	}{{f, http.StatusNotModified}, {other, http.StatusOK}} {
		req := httptest.NewRequest(http.MethodGet, "/a.js", nil)
		req.Header.Set("If-None-Match", etag)
		rec := httptest.NewRecorder()
		tt.file.Serve(rec, req)
		if rec.Code != tt.status || (tt.status == http.StatusNotModified) != (rec.Body.Len() == 0) {
			t.Errorf("If-None-Match %s: %d with %d bytes, want %d", etag, rec.Code, rec.Body.Len(), tt.status)
		}
	}
}
