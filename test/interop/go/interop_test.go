// Go valkeyaside and the edge on one key: each waits for the other's lock and wakes with its value, deletes reach
// every copy, bytes cross unchanged, a stampede from both runs one loader, and each takes over the other's dead lock.
package interop

import (
	"bufio"
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const ttl = 10 * time.Second

// binaryValues have NULs, 0xff 0xfe, invalid UTF-8 (a lone continuation byte, a truncated sequence, an overlong
// form, a surrogate) and a UTF-8 BOM prefix.
var binaryValues = map[string][]byte{
	"nul-ff-fe":    {0x00, 0xff, 0xfe, 0x00, 0x01},
	"invalid-utf8": {'a', 0x80, 'b', 0xe2, 0x82, 'c', 0xc0, 0xaf, 0xed, 0xa0, 0x80},
	"bom":          append([]byte{0xef, 0xbb, 0xbf}, []byte("text after a BOM")...),
	"all-bytes":    allBytes(),
}

func allBytes() []byte {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(255 - i)
	}
	return b
}

func TestEdgeGetsWaitForAGoLockAndWakeWithGosValue(t *testing.T) {
	goc := newGoClient(t)
	key := randomKey("go-lock")
	locked, unblock := make(chan struct{}), make(chan struct{})
	goGet := async(t, func() error {
		_, err := goc.Get(ctxT(t), ttl, key, func(ctx context.Context, key string) (string, error) {
			close(locked)
			awaitLoader(ctx, unblock)
			return "from-go", nil
		})
		return err
	})
	await(t, locked, "the Go loader to hold the lock")
	gets := []func() edgeResult{
		async(t, func() edgeResult { return edgeGet(t, 0, key, ttl, []byte("from-edge-a"), false) }),
		async(t, func() edgeResult { return edgeGet(t, 1, key, ttl, []byte("from-edge-b"), false) }),
	}
	// No event says "parked behind Go's lock"; the coordinators' stats do.
	waitFor(t, "both edge gets to wait on Go's lock", 10*time.Second, func() bool {
		return stats(t, 0, key).WaitingGets >= 1 && stats(t, 1, key).WaitingGets >= 1
	})
	close(unblock)
	if err := goGet(); err != nil {
		t.Fatal(err)
	}
	for i, get := range gets {
		r := get()
		if got := string(r.value(t)); got != "from-go" {
			t.Errorf("edge %d got %q, want Go's value", i, got)
		}
	}
	if n := edgeLoads(t, key); n != 0 {
		t.Errorf("the edge loader ran %d times; want 0", n)
	}
}

func TestGoWaitsForAnEdgeLockAndWakesWithTheEdgesValue(t *testing.T) {
	goc := newGoClient(t)
	key := randomKey("edge-lock")
	hold(t, key)
	edgeResultF := async(t, func() edgeResult { return edgeGet(t, 0, key, ttl, []byte("from-edge"), false) })
	waitEdgeLoads(t, key, 1)
	var goLoads atomic.Int32
	goGets := make([]func() string, 3)
	for i := range goGets {
		goGets[i] = async(t, func() string {
			v, err := goc.Get(ctxT(t), ttl, key, func(ctx context.Context, key string) (string, error) {
				goLoads.Add(1)
				return "from-go", nil
			})
			if err != nil {
				t.Error(err)
			}
			return v
		})
	}
	// Go parks on the edge's placeholder: it has read it (and its marker) through client-side caching.
	waitFor(t, "Go to read the edge's placeholder", 10*time.Second, func() bool {
		v, _ := rawClient(t).Do(ctxT(t), rawClient(t).B().Get().Key(key).Build()).ToString()
		return strings.HasPrefix(v, "valkeyid:")
	})
	release(t, key)
	if got := string(edgeResultF().value(t)); got != "from-edge" {
		t.Fatalf("edge got %q", got)
	}
	for _, g := range goGets {
		if got := g(); got != "from-edge" {
			t.Errorf("Go got %q, want the edge's value", got)
		}
	}
	if n := goLoads.Load(); n != 0 {
		t.Errorf("the Go loader ran %d times; want 0", n)
	}
}

func TestGoDelDropsEveryEdgeCopy(t *testing.T) {
	goc := newGoClient(t)
	key := randomKey("go-del")
	for i := 0; i < 2; i++ {
		if got := string(edgeGet(t, i, key, ttl, []byte("cached"), false).value(t)); got != "cached" {
			t.Fatalf("edge %d loaded %q", i, got)
		}
		if r := edgeGet(t, i, key, ttl, nil, true); r.Outcome != "hit" {
			t.Fatalf("edge %d: second get was %q, want a local hit", i, r.Outcome)
		}
	}
	if err := goc.Del(ctxT(t), key); err != nil {
		t.Fatal(err)
	}
	// A delete outside the bridge reaches the edge by Valkey's push: within a bound, not before Del returns.
	for i := 0; i < 2; i++ {
		waitFor(t, "edge "+strconv.Itoa(i)+" to drop its copy", 2*time.Second, func() bool {
			r := edgeGet(t, i, key, ttl, nil, true)
			return r.OK && r.Hex == nil
		})
	}
}

func TestEdgeDelDropsGosCopy(t *testing.T) {
	goc := newGoClient(t)
	key := randomKey("edge-del")
	if v, err := goc.Get(ctxT(t), ttl, key, func(context.Context, string) (string, error) { return "go-1", nil }); err != nil || v != "go-1" {
		t.Fatalf("got %q, %v", v, err)
	}
	edgeDel(t, 0, key)
	waitFor(t, "Go to drop its copy", 2*time.Second, func() bool {
		v, err := goc.Get(ctxT(t), ttl, key, func(context.Context, string) (string, error) { return "go-2", nil })
		return err == nil && v == "go-2"
	})
}

func TestBinaryValuesRoundTripByteForByte(t *testing.T) {
	goc := newGoClient(t)
	for name, value := range binaryValues {
		t.Run("go-to-edge/"+name, func(t *testing.T) {
			key := randomKey("bin-go")
			v, err := goc.Get(ctxT(t), ttl, key, func(context.Context, string) (string, error) { return string(value), nil })
			if err != nil || v != string(value) {
				t.Fatalf("Go got %x, %v", v, err)
			}
			for i := 0; i < 2; i++ {
				if got := edgeGet(t, i, key, ttl, nil, true).value(t); !bytes.Equal(got, value) {
					t.Errorf("edge %d got %x, want %x", i, got, value)
				}
			}
		})
		t.Run("edge-to-go/"+name, func(t *testing.T) {
			key := randomKey("bin-edge")
			if got := edgeGet(t, 0, key, ttl, value, false).value(t); !bytes.Equal(got, value) {
				t.Fatalf("edge got %x", got)
			}
			v, err := goc.Get(ctxT(t), ttl, key, func(context.Context, string) (string, error) {
				t.Error("the Go loader ran on a key the edge had stored")
				return "", nil
			})
			if err != nil || v != string(value) {
				t.Errorf("Go got %x, %v; want %x", v, err, value)
			}
			raw, err := rawClient(t).Do(ctxT(t), rawClient(t).B().Get().Key(key).Build()).AsBytes()
			if err != nil || !bytes.Equal(raw, value) {
				t.Errorf("the server holds %x, %v; want %x", raw, err, value)
			}
		})
	}
}

func TestAMixedStampedeRunsExactlyOneLoader(t *testing.T) {
	key := randomKey("stampede")
	hold(t, key)
	clients := []interface {
		Get(context.Context, time.Duration, string, func(context.Context, string) (string, error)) (string, error)
	}{newGoClient(t), newGoClient(t)}
	var goLoads atomic.Int32
	unblock := make(chan struct{})
	var start sync.WaitGroup
	start.Add(1)
	var results []func() string
	for i := 0; i < 6; i++ {
		c := clients[i%2]
		results = append(results, async(t, func() string {
			start.Wait()
			v, err := c.Get(ctxT(t), ttl, key, func(ctx context.Context, _ string) (string, error) {
				goLoads.Add(1)
				awaitLoader(ctx, unblock)
				return "go-value", nil
			})
			if err != nil {
				t.Error(err)
			}
			return v
		}))
	}
	for i := 0; i < 6; i++ {
		results = append(results, async(t, func() string {
			start.Wait()
			r := edgeGet(t, i%2, key, ttl, []byte("edge-value"), false)
			return string(r.value(t))
		}))
	}
	start.Done()
	waitFor(t, "one loader to start", 10*time.Second, func() bool { return int(goLoads.Load())+edgeLoads(t, key) >= 1 })
	close(unblock)
	release(t, key)
	var first string
	for i, r := range results {
		v := r()
		if i == 0 {
			first = v
		} else if v != first {
			t.Errorf("get %d got %q, get 0 got %q", i, v, first)
		}
	}
	if total := int(goLoads.Load()) + edgeLoads(t, key); total != 1 {
		t.Errorf("%d loaders ran (Go %d, edge %d); want exactly 1", total, goLoads.Load(), edgeLoads(t, key))
	}
}

func TestTheEdgeTakesOverTheLockOfAKilledGoClient(t *testing.T) {
	key := randomKey("go-killed")
	bin := filepath.Join(t.TempDir(), "holder")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/holder").CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/holder: %v\n%s", err, out)
	}
	holder := exec.Command(bin, env(t, "INTEROP_VALKEY_ADDR"), key, strconv.FormatInt(goClientTTL.Milliseconds(), 10), strconv.FormatBool(useLuaLock(t)))
	stdout, _ := holder.StdoutPipe()
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = holder.Process.Kill(); _ = holder.Wait() })
	line := async(t, func() string { s, _ := bufio.NewReader(stdout).ReadString('\n'); return s })
	if got := line(); got != "locked\n" {
		t.Fatalf("holder said %q", got)
	}
	if err := holder.Process.Kill(); err != nil { // SIGKILL: no Close, its marker stays until its ttl
		t.Fatal(err)
	}
	_ = holder.Wait()
	began := time.Now()
	r := edgeGet(t, 0, key, ttl, []byte("edge-took-over"), false)
	if got := string(r.value(t)); got != "edge-took-over" || r.Outcome != "took-over" {
		t.Fatalf("edge got %q (%s), want its own load after taking the lock over", got, r.Outcome)
	}
	t.Logf("the edge took over %v after the kill (Go marker ttl %v)", time.Since(began).Round(time.Millisecond), goClientTTL)
}

// Last in this file: it restarts workerd, so every edge coordinator starts afresh after it.
func TestGoTakesOverTheLockOfADeadEdgeCoordinator(t *testing.T) {
	goc := newGoClient(t)
	key := randomKey("edge-killed")
	hold(t, key)
	pending := async(t, func() error {
		res, err := httpClient.Get(edge(t, 0) + "/get?key=" + key + "&hex=00")
		if err == nil {
			res.Body.Close()
		}
		return err
	})
	waitEdgeLoads(t, key, 1)
	restartWorkers(t)
	_ = pending() // cut with workerd: an error or a lost connection
	began := time.Now()
	v, err := goc.Get(ctxT(t), ttl, key, func(context.Context, string) (string, error) { return "go-took-over", nil })
	if err != nil || v != "go-took-over" {
		t.Fatalf("Go got %q, %v; want its own load", v, err)
	}
	t.Logf("Go took over %v after workerd died (edge marker ttl %v)", time.Since(began).Round(time.Millisecond), edgeClientTTL(t))
	if got := string(edgeGet(t, 1, key, ttl, nil, true).value(t)); got != "go-took-over" {
		t.Errorf("the restarted edge got %q", got)
	}
}
