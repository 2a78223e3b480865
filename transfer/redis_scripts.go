package transfer

import (
	"embed"

	"github.com/redis/go-redis/v9"
)

// The Redis store's scripts, one file each in lua/. Each takes one
// argument, a JSON object whose fields are named in the file's header and
// in the Go struct its caller encodes (writeArgs, numbersArgs, ...).
var (
	writeScript         = luaScript("write")
	findScript          = luaScript("find")
	purgeScript         = luaScript("purge")
	checkNumbersScript  = luaScript("check_numbers")
	removeNumbersScript = luaScript("remove_numbers")
	addNumbersScript    = luaScript("add_numbers")
	poolStatsScript     = luaScript("pool_stats")
	heartbeatScript     = luaScript("heartbeat")
	lostNodesScript     = luaScript("lost_nodes")
)

//go:embed lua/*.lua
var luaFiles embed.FS

// luaScript loads lua/name.lua, embedded at build time (so a wrong name
// fails every test at start-up).
func luaScript(name string) *redis.Script {
	src, err := luaFiles.ReadFile("lua/" + name + ".lua")
	if err != nil {
		panic(err)
	}
	return redis.NewScript(string(src))
}
