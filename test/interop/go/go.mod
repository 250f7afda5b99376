module valkeyaside-edge/test/interop/go

go 1.25.0

require github.com/valkey-io/valkey-go v1.0.55

require golang.org/x/sys v0.30.0 // indirect
