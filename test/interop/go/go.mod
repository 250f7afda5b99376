module valkeyaside-edge/test/interop/go

go 1.25.0

require (
	github.com/valkey-io/valkey-go v1.0.76
	github.com/valkey-io/valkey-go/valkeyaside v1.0.76
)
