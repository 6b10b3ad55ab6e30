module github.com/fraiseql/observer/abi

go 1.24
