package app

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// GET /api/v1/guard/status of a running `up`: the configured site with its
// upstream, the proxy running, and a refusal counted
// by reason once a denied source has tried.
func TestGuardStatusAPI(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "shop") }))
	defer upstream.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	guardAddr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "bulwark.yaml")
	up := "http://" + upstream.Listener.Addr().String()
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("guard:\n  listen: %s\n  deny: [127.0.0.1/32]\n  sites:\n    - hosts: [shop.example]\n      upstreams: [%s]\n", guardAddr, up)), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := Open(ctx, Options{ConfigPath: cfg, DataDir: filepath.Join(dir, "data"), Listen: "127.0.0.1:0", LogLevel: "error", Stderr: io.Discard,
		Getenv: func(k string) string {
			return map[string]string{"BULWARK_ADMIN_PASSWORD": "guard status test password"}[k]
		}})
	if err != nil {
		t.Fatal(err)
	}
	served, addrc := make(chan error, 1), make(chan string, 1)
	go func() {
		served <- a.Serve(ctx, ServeOptions{Out: io.Discard, Stdout: io.Discard, OnListen: func(addr string) { addrc <- addr }})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
		a.Close()
	})
	var api string
	select {
	case api = <-addrc:
	case err := <-served:
		t.Fatalf("Serve: %v", err)
	}
	// A denied source: the guard closes the connection and counts it.
	for i := 0; ; i++ { // the guard's listener comes up with Serve
		conn, err := net.Dial("tcp", guardAddr)
		if err == nil {
			conn.Close()
			break
		}
		if i == 100 {
			t.Fatalf("the guard does not listen: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	req, _ := http.NewRequest("GET", "http://"+guardAddr+"/", nil)
	req.Host = "shop.example"
	if res, err := (&http.Client{Timeout: 2 * time.Second}).Do(req); err == nil {
		res.Body.Close()
		t.Fatalf("a denied source was served: %d", res.StatusCode)
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} // the test's own self-signed server
	body, _ := json.Marshal(map[string]string{"username": "admin", "password": "guard status test password"})
	res, err := c.Post("https://"+api+"/api/v1/auth/login", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var login struct{ Token string }
	json.NewDecoder(res.Body).Decode(&login)
	res.Body.Close()
	var st struct {
		Enabled bool
		Sites   []struct {
			Hosts     []string
			Upstreams []struct{ URL string }
		}
		Enforcement *struct {
			GuardRunning bool `json:"guard_running"`
		}
		Blocks []struct {
			Reason string
			Count  float64
		}
	}
	var raw []byte
	for i := 0; ; i++ {
		req, _ := http.NewRequest("GET", "https://"+api+"/api/v1/guard/status", nil)
		req.Header.Set("Authorization", "Bearer "+login.Token)
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ = io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("guard status: %d %s", res.StatusCode, raw)
		}
		if err := json.Unmarshal(raw, &st); err != nil {
			t.Fatal(err)
		}
		if len(st.Blocks) > 0 || i == 50 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !st.Enabled || len(st.Sites) != 1 || st.Sites[0].Hosts[0] != "shop.example" || len(st.Sites[0].Upstreams) != 1 {
		t.Fatalf("sites: %s", raw)
	}
	if st.Sites[0].Upstreams[0].URL != up {
		t.Errorf("upstream %q, want %q", st.Sites[0].Upstreams[0].URL, up)
	}
	if st.Enforcement == nil || !st.Enforcement.GuardRunning {
		t.Errorf("enforcement: %s", raw)
	}
	if len(st.Blocks) == 0 || st.Blocks[0].Count < 1 || st.Blocks[0].Reason == "" {
		t.Errorf("the denied source's attempt is not counted: %s", raw)
	}
}
