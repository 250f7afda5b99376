// The Go side of the interop suite: real valkey-go valkeyaside clients, and HTTP helpers for the edge (the interop
// Worker in workerd) and for the driver's control API. test/interop/run.ts sets the INTEROP_* variables.
package interop

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"
	"github.com/valkey-io/valkey-go/valkeyaside"
)

// goClientTTL is the Go clients' marker ttl: short, so a killed Go holder's lock is taken over quickly.
const goClientTTL = time.Second

func env(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		t.Fatalf("%s is not set: run this suite with `npm run test:go` (test/interop/run.ts)", name)
	}
	return v
}

func useLuaLock(t testing.TB) bool { return env(t, "INTEROP_USE_LUA_LOCK") == "true" }

func edgeClientTTL(t testing.TB) time.Duration {
	ms, err := strconv.Atoi(env(t, "INTEROP_EDGE_CLIENT_TTL_MS"))
	if err != nil {
		t.Fatal(err)
	}
	return time.Duration(ms) * time.Millisecond
}

// newGoClient is a real valkeyaside client on the suite's server, closed with the test.
func newGoClient(t testing.TB) valkeyaside.CacheAsideClient {
	t.Helper()
	c, err := valkeyaside.NewClient(valkeyaside.ClientOption{
		ClientOption: valkey.ClientOption{InitAddress: []string{env(t, "INTEROP_VALKEY_ADDR")}},
		ClientTTL:    goClientTTL,
		UseLuaLock:   useLuaLock(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// rawClient is a plain valkey client without client-side caching, to look at what the server holds.
func rawClient(t testing.TB) valkey.Client {
	t.Helper()
	c, err := valkey.NewClient(valkey.ClientOption{InitAddress: []string{env(t, "INTEROP_VALKEY_ADDR")}, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func randomKey(name string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return fmt.Sprintf("interop:%s:%x", name, b)
}

var httpClient = &http.Client{Timeout: 30 * time.Second}

func getJSON(t testing.TB, u string, out any) {
	t.Helper()
	res, err := httpClient.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer res.Body.Close()
	if err := json.NewDecoder(res.Body).Decode(out); err != nil {
		t.Fatalf("GET %s: answer %d is not JSON: %v", u, res.StatusCode, err)
	}
}

func control(t testing.TB, path string, q url.Values, out any) {
	t.Helper()
	if out == nil {
		out = &map[string]any{}
	}
	getJSON(t, env(t, "INTEROP_CONTROL_URL")+path+"?"+q.Encode(), out)
}

// hold makes the next edge load of key wait until release(key).
func hold(t testing.TB, key string)    { control(t, "/hold", url.Values{"key": {key}}, nil) }
func release(t testing.TB, key string) { control(t, "/release", url.Values{"key": {key}}, nil) }

// edgeLoads counts the edge loader's calls for key (every Worker's).
func edgeLoads(t testing.TB, key string) int {
	var r struct{ Loads int }
	control(t, "/loads", url.Values{"key": {key}}, &r)
	return r.Loads
}

// waitEdgeLoads returns once the edge loader was called n times for key (bounded by the driver).
func waitEdgeLoads(t testing.TB, key string, n int) {
	var r struct {
		Loads int
		Error string
	}
	control(t, "/wait-loads", url.Values{"key": {key}, "n": {strconv.Itoa(n)}, "timeoutMs": {"10000"}}, &r)
	if r.Error != "" {
		t.Fatal(r.Error)
	}
}

var (
	workersMu  sync.Mutex
	workerURLs []string
)

// edge returns the base URL of Worker i (0 or 1): each has its own coordinators, so its own copy of a key.
func edge(t testing.TB, i int) string {
	workersMu.Lock()
	defer workersMu.Unlock()
	if workerURLs == nil {
		var r struct{ Urls []string }
		control(t, "/workers", nil, &r)
		workerURLs = r.Urls
	}
	return workerURLs[i]
}

// restartWorkers kills workerd (every edge coordinator dies, locks and markers left behind) and starts it again.
func restartWorkers(t testing.TB) {
	var r struct{ Urls []string }
	control(t, "/restart-workers", nil, &r)
	workersMu.Lock()
	workerURLs = r.Urls
	workersMu.Unlock()
}

type edgeError struct{ Name, Code, Message string }

type edgeResult struct {
	OK      bool
	Hex     *string
	Outcome string
	Error   *edgeError
}

// value is the bytes the edge returned; fails on an error or a null.
func (r edgeResult) value(t testing.TB) []byte {
	t.Helper()
	if !r.OK {
		t.Fatalf("edge get failed: %+v", *r.Error)
	}
	if r.Hex == nil {
		t.Fatal("edge get returned null")
	}
	b, err := hex.DecodeString(*r.Hex)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// edgeGet is a bytes-view get on Worker i. value (nil: the origin's body) is what its loader returns;
// noLoader gets without a loader (a miss is null).
func edgeGet(t testing.TB, i int, key string, ttl time.Duration, value []byte, noLoader bool) edgeResult {
	q := url.Values{"key": {key}, "ttl": {strconv.FormatInt(ttl.Milliseconds(), 10)}}
	if value != nil {
		q.Set("hex", hex.EncodeToString(value))
	}
	if noLoader {
		q.Set("loader", "0")
	}
	var r edgeResult
	getJSON(t, edge(t, i)+"/get?"+q.Encode(), &r)
	return r
}

func edgeDel(t testing.TB, i int, key string) {
	var r edgeResult
	getJSON(t, edge(t, i)+"/del?"+url.Values{"key": {key}}.Encode(), &r)
	if !r.OK {
		t.Fatalf("edge del failed: %+v", *r.Error)
	}
}

type edgeStats struct {
	Connected   bool
	ClientID    *string `json:"clientId"`
	WaitingGets int     `json:"waitingGets"`
	ActiveGets  int     `json:"activeGets"`
}

func stats(t testing.TB, i int, key string) edgeStats {
	var s edgeStats
	getJSON(t, edge(t, i)+"/stats?"+url.Values{"key": {key}}.Encode(), &s)
	return s
}

// waitFor polls check (bounded) for state that has no event, e.g. a marker's ttl running out.
func waitFor(t testing.TB, what string, timeout time.Duration, check func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !check() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// async runs f in a goroutine; the returned function waits for its result (bounded).
func async[T any](t testing.TB, f func() T) func() T {
	ch := make(chan T, 1)
	go func() { ch <- f() }()
	return func() T {
		t.Helper()
		select {
		case v := <-ch:
			return v
		case <-time.After(30 * time.Second):
			t.Fatal("timed out after 30s waiting for a get")
			panic("unreachable")
		}
	}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// await waits (bounded) for ch to close, e.g. a loader signalling it holds the lock.
func await(t testing.TB, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		t.Fatalf("timed out after 30s waiting for %s", what)
	}
}

// awaitLoader blocks a loader until the test releases it or the get's context (its ttl) ends.
func awaitLoader(ctx context.Context, unblock <-chan struct{}) {
	select {
	case <-unblock:
	case <-ctx.Done():
	}
}
