// The step types a case of one kind records: its own and those of the measures taken inside it
// (查封/扣押 in a penalty or inspection case, art. 20 para. 2), the case's own first. ``field``: true
// for work on site (the visit's step form), false for the desk; the catalogue says which is which.
// Mirrors fieldapp/rules/catalogue.py Catalogue.step_types_for.

export function stepTypesFor(catalogue, caseKind, { field }) {
  const kinds = [caseKind, ...((catalogue?.kinds || []).find((k) => k.id === caseKind)?.measures || [])];
  return (catalogue?.step_types || []).filter((s) => kinds.includes(s.kind) && (s.field !== false) === field)
    .sort((a, b) => kinds.indexOf(a.kind) - kinds.indexOf(b.kind)); // stable: the catalogue's order within a kind
}
