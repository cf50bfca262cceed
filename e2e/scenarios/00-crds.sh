# The upstream CRDs from ../shared/crds (unmodified copies, see its SOURCES.md), Established
# before anything uses them. They are created with `kubectl create`: the RoleBasedGroup(Set)
# CRDs are ~3 MB, and a client-side apply would add the whole object again as an annotation.

crd_established() { # crd_established FILE
  local name
  name="$(k create --dry-run=client -f "$1" -o jsonpath='{.metadata.name}')"
  k create -f "$1" >/dev/null
  established() { k get crd "$name" -o jsonpath='{.status.conditions[?(@.type=="Established")].status}' | grep -qx True; }
  wait_for 60 established
  echo "  $name Established"
  # Served: a list of the kind answers (it is empty).
  k get "$name" -A -o name
}

for crd in "$E2E_SHARED"/crds/*.yaml; do
  if [ ! -d "$E2E_SHARED/crds" ]; then break; fi
  scenario "CRD $(basename "$crd" .yaml) is created and Established" crd_established "$crd"
done
[ -d "$E2E_SHARED/crds" ] || scenario "upstream CRDs" bash -c 'echo "../shared/crds absent: custom-resource kinds not installed"; exit 77'
