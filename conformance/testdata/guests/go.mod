module github.com/fraiseql/observer/conformance/testdata/guests

go 1.24
