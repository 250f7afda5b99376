// holder takes the valkeyaside lock of one key with a loader that never returns, prints "locked" and waits to be
// killed (kill -9 by the test): a Go client that dies holding a lock, its marker left to expire.
package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/valkey-io/valkey-go"
	"github.com/valkey-io/valkey-go/valkeyaside"
)

func main() {
	if len(os.Args) != 5 {
		fmt.Fprintln(os.Stderr, "usage: holder <addr> <key> <clientTtlMs> <useLuaLock>")
		os.Exit(2)
	}
	ttlMs, _ := strconv.Atoi(os.Args[3])
	client, err := valkeyaside.NewClient(valkeyaside.ClientOption{
		ClientOption: valkey.ClientOption{InitAddress: []string{os.Args[1]}},
		ClientTTL:    time.Duration(ttlMs) * time.Millisecond,
		UseLuaLock:   os.Args[4] == "true",
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	_, err = client.Get(context.Background(), time.Minute, os.Args[2], func(ctx context.Context, key string) (string, error) {
		fmt.Println("locked")
		<-ctx.Done()
		return "", ctx.Err()
	})
	fmt.Fprintln(os.Stderr, "holder: get ended:", err)
	os.Exit(1)
}
