// Package chaos is holdfast's fault suite across real hosts: a cluster of
// three holdfast containers (images built FROM scratch from the static
// binary, no image pulled) on a private Docker network, each its own host
// with its own address, and the faults Docker can inflict on a host:
//
//   - a network partition (docker network disconnect / connect) of a key's
//     owner: the majority takes its partitions over after lease TTL + ε
//     (on_owner_loss reset) or marks them orphaned (wait); once healed, the
//     cut-off node never serves an epoch it was not handed;
//   - a pause longer than the lease (docker pause: the cgroup freezer, the
//     node's clocks keep running): the same rules on waking up;
//   - SIGKILL and a restart on the same disk (docker kill, docker start):
//     orphaned partitions answer "unavailable, retry" until the node is
//     back, then every acknowledged write is there.
//
// The tests carry the build tag `chaos` and need a Docker Engine; they are
// not part of `make test` (they take minutes): run `make chaos`. Every
// container, network and image a run makes is removed when it ends.
package chaos
