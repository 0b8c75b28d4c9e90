package contain

// The tree's tag: how a process says which entry it belongs to, in its
// environment, whoever its parent is now.

import (
	"os"
	"strconv"
	"strings"
)

// treeVar tags every child that Start starts, and so every descendant that
// keeps its environment, with "<parent pid>.<entry>": an orphan that
// reparents to this process (a subreaper) says which entry it belongs to.
// A worker tags its own children with its own PID; when it dies without
// stopping them (SIGKILL), their orphans reparent to this process with a
// tag "<worker pid>.<n>", and belong to the entry that started the worker
// (see ownerOf).
const treeVar = "MULTIEXIT_TREE"

// childTag is the tag of the children of entry tag: it, then the tag this
// process carries, bounded to maxTagDepth entries.
func childTag(tag string) string {
	up := os.Getenv(treeVar)
	if up == "" {
		return tag
	}
	list := append([]string{tag}, strings.Split(up, ",")...)
	return strings.Join(list[:min(len(list), maxTagDepth)], ",")
}

// maxTagDepth bounds the list a tag carries (see ownerOf).
const maxTagDepth = 16

// ownerOf returns the tag of the entry that a live orphan of this process,
// started at born and tagged tag, belongs to, or "" if it belongs to none.
// Called with tree.mu held.
//
// A tag is a list, nearest first, of "<P>.<n>": the entry n of process P
// that started the process carrying it (or its ancestor), then the tag
// that P itself carried, and so on up (at most maxTagDepth). The first of
// them that names one of our entries decides. One of this process's (its
// prefix) names the entry. "<P>.<n>" where P is a child that one of our
// entries started — a worker with entries of its own, which died without
// stopping them — belongs to that entry: the orphan is of a tree below it,
// and stops with it. P may be dead and reaped, its PID reused meanwhile by
// a child of another entry: the entry's record of P (kept until it is
// released) holds P's start time, and of the children recorded with PID P
// the orphan belongs to the latest started before it was (a descendant is
// started after its ancestor). So an orphan of two or more SIGKILLed
// levels (a worker's worker's escapee) still names, further up its list,
// the entry of this process that started its tree. Such an orphan may be
// a worker of that tree, stopping on its own since its parent died: it
// ignores the entry's SIGTERM (a repeated one), but its descendants get
// theirs with it, and all of it is killed at the end of the entry's grace
// period, the budget it had below the entry anyway. A tag that names none
// of our entries' children is another tree's (a program this process ran
// without Start, or one above it): such an orphan is left alone, as init
// would, and reaped when it dies.
func ownerOf(tag string, born uint64) string {
	for t := range strings.SplitSeq(tag, ",") {
		if strings.HasPrefix(t, tree.prefix) {
			return t
		}
		p, _, ok := strings.Cut(t, ".")
		kid, err := strconv.Atoi(p)
		if !ok || err != nil || len(tree.started[kid]) == 0 {
			continue
		}
		var owner *Entry
		for _, e := range tree.started[kid] {
			if t := e.kids[kid]; t <= born && (owner == nil || t >= owner.kids[kid]) {
				owner = e
			}
		}
		if owner != nil {
			return owner.tag
		}
	}
	return ""
}
