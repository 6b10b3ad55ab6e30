module github.com/fraiseql/observer/examples/plugins/go

go 1.24

require (
	github.com/fraiseql/observer/abi v0.0.0 // indirect
	github.com/fraiseql/observer/sdk-guest/go v0.0.0
)

replace (
	github.com/fraiseql/observer/abi => ../../../abi
	github.com/fraiseql/observer/sdk-guest/go => ../../../sdk-guest/go
)
