module github.com/fraiseql/observer/sdk-guest/go

go 1.24

require github.com/fraiseql/observer/abi v0.0.0

replace github.com/fraiseql/observer/abi => ../../abi
