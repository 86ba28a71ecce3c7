// Command crashme is a test program for package failpoint: it prints "a",
// reaches the failpoint "one", prints "b", reaches "two", sleeps for the
// duration given as its argument (0 if none) and prints "c".
package main

import (
	"fmt"
	"os"
	"time"

	"github.com/dobrobot/dobrobot/commands/failpoint"
)

func main() {
	fmt.Println("a")
	failpoint.Hit("one")
	fmt.Println("b")
	failpoint.Hit("two")
	var d time.Duration
	if len(os.Args) > 1 {
		d, _ = time.ParseDuration(os.Args[1])
	}
	time.Sleep(d)
	fmt.Println("c")
}
