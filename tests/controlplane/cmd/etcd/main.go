// Command etcd is the etcd server: etcd's own main module has local replaces, so it is built from etcdmain here.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
