package monitor

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dobrobot/dobrobot/storage"
)

// TestHealthz: 503 while Slack is down or the database cannot be read,
// saying which; 200 when both are up.
func TestHealthz(t *testing.T) {
	db, err := storage.Open(filepath.Join(t.TempDir(), "bot.db"))
	if err != nil {
		t.Fatal(err)
	}
	var up atomic.Bool
	srv := httptest.NewServer(healthHandler(Options{Store: db, Connected: up.Load}))
	defer srv.Close()
	get := func() (int, Health) {
		t.Helper()
		resp, err := http.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var h Health
		if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, h
	}
	code, h := get()
	if diff := cmp.Diff(Health{Status: "unhealthy", Database: "ok", Slack: "disconnected"}, h); diff != "" || code != http.StatusServiceUnavailable {
		t.Errorf("Slack down: %d (-want +got):\n%s", code, diff)
	}
	up.Store(true)
	code, h = get()
	if diff := cmp.Diff(Health{Status: "ok", Database: "ok", Slack: "connected"}, h); diff != "" || code != http.StatusOK {
		t.Errorf("all up: %d (-want +got):\n%s", code, diff)
	}
	db.Close()
	code, h = get()
	if code != http.StatusServiceUnavailable || h.Status != "unhealthy" || h.Database == "ok" || h.Slack != "connected" {
		t.Errorf("database closed: %d %+v; want 503 naming the database", code, h)
	}
}
