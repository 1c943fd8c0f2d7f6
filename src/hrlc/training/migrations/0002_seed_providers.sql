-- The providers named in spec §3.4.2.1. They deliver HRLC class codes (no label_mapping rows); give a provider
-- its own legend with `hrlc training provider add CODE --mapping FILE.csv`.
-- (The spec writes "UniPV (Padova University)"; UniPV is the University of Pavia's acronym. The code is what
-- the file names carry.)
insert into training.provider (code, name, url) values
    ('Polimi', 'Politecnico di Milano (Milan Polytechnic)', 'https://www.polimi.it'),
    ('UniPV', 'Università degli Studi di Pavia', 'https://www.unipv.it'),
    ('UniTN', 'Università degli Studi di Trento (Trento University)', 'https://www.unitn.it');
