//go:build soak

package scenarios

// soakRun is true under `make soak`: the fault tests run at their long size.
const soakRun = true
