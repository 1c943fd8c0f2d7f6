-- A training set can be retired (`hrlc training retire NAME`): its current version is superseded without a
-- successor (its rows stay, the classification no longer selects it), and the import log says so.
alter table training.import_outcome drop constraint import_outcome_outcome_check;
alter table training.import_outcome add constraint import_outcome_outcome_check
    check (outcome in ('imported', 'unchanged', 'replaced', 'rejected', 'retired'));
