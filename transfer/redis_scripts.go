package transfer

import (
	"embed"

	"github.com/redis/go-redis/v9"
)

// The Redis store's scripts, one file each in lua/. Each takes one
// argument, a JSON object whose fields are named in the file's header and
// in the Go struct its caller encodes (writeArgs, numbersArgs, ...).
var (
	writeScript         = luaScript("write", "outbox_lib")
	findScript          = luaScript("find")
	purgeScript         = luaScript("purge")
	checkNumbersScript  = luaScript("check_numbers")
	removeNumbersScript = luaScript("remove_numbers")
	addNumbersScript    = luaScript("add_numbers")
	poolStatsScript     = luaScript("pool_stats")
	heartbeatScript     = luaScript("heartbeat")
	lostNodesScript     = luaScript("lost_nodes")
	enqueueScript       = luaScript("outbox_enqueue", "outbox_lib")
	claimScript         = luaScript("outbox_claim", "outbox_lib")
	doneScript          = luaScript("outbox_done", "outbox_lib")
	retryScript         = luaScript("outbox_retry", "outbox_lib")
)

//go:embed lua/*.lua
var luaFiles embed.FS

// luaScript loads lua/name.lua, embedded at build time (so a wrong name
// fails every test at start-up), after the libraries it uses (files of
// local functions, such as lua/outbox_lib.lua).
func luaScript(name string, libs ...string) *redis.Script {
	var src []byte
	for _, f := range append(libs, name) {
		b, err := luaFiles.ReadFile("lua/" + f + ".lua")
		if err != nil {
			panic(err)
		}
		src = append(append(src, b...), '\n')
	}
	return redis.NewScript(string(src))
}
