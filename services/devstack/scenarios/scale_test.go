//go:build !soak

package scenarios

// soakRun is false in `make test`: the fault tests run at their short size.
const soakRun = false
