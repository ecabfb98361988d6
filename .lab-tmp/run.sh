#!/bin/bash
topo=.build/release/topo
n=32
p=/tmp/links$n.yaml
{ echo "version: 1"; echo "name: links$n"; echo "workloads:"
  for i in $(seq 1 $n); do
      echo "  a$i: { cpus: \"0-1\", isolation: shared }"
      echo "  b$i: { cpus: \"0-1\", isolation: shared }"
  done
  echo "links:"
  for i in $(seq 1 $n); do echo "  - { between: [a$i, b$i], netem: { delay: 1ms, rate: 100mbit } }"; done; } > $p
$topo apply $p > /dev/null 2>&1
TOPO_TIME=1 $topo verify links$n --watch 0.1 --count 3 2>&1 | tail -30
$topo down links$n > /dev/null
