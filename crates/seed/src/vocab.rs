//! Invented names, streets and towns, and England's ethnic categories with their 2021 census
//! shares. Nothing here names a real person or address; the towns and postcode areas do not
//! exist (their two-letter areas are unused in the UK).

/// A name pool: given names by sex, and family names.
#[derive(Debug)]
pub(crate) struct Names {
    pub female: &'static [&'static str],
    pub male: &'static [&'static str],
    pub family: &'static [&'static str],
}

const BRITISH_OLDER: Names = Names {
    female: &[
        "Margaret",
        "Patricia",
        "Susan",
        "Janet",
        "Joan",
        "Dorothy",
        "Barbara",
        "Linda",
        "Christine",
        "Elizabeth",
        "Jean",
        "Pauline",
        "Carol",
        "Sheila",
        "Anne",
        "Brenda",
        "Valerie",
        "Gillian",
    ],
    male: &[
        "John", "David", "Michael", "Peter", "Brian", "Keith", "Robert", "Alan", "Stephen",
        "Kenneth", "Colin", "Derek", "Graham", "Trevor", "Roy", "Geoffrey", "Malcolm", "Anthony",
    ],
    family: BRITISH_FAMILY,
};

const BRITISH_YOUNGER: Names = Names {
    female: &[
        "Olivia",
        "Amelia",
        "Isla",
        "Ava",
        "Mia",
        "Freya",
        "Lily",
        "Grace",
        "Sophie",
        "Evie",
        "Chloe",
        "Hannah",
        "Megan",
        "Emily",
        "Jessica",
        "Charlotte",
        "Rebecca",
        "Laura",
        "Sarah",
        "Emma",
        "Zoë",
        "Niamh",
        "Ellie-Mae",
    ],
    male: &[
        "Oliver", "George", "Harry", "Noah", "Jack", "Leo", "Arthur", "Oscar", "Charlie", "Thomas",
        "William", "James", "Daniel", "Liam", "Callum", "Owen", "Ryan", "Jamie", "Lewis", "Ethan",
        "Alfie", "Jean-Luc",
    ],
    family: BRITISH_FAMILY,
};

const BRITISH_FAMILY: &[&str] = &[
    "Smith",
    "Jones",
    "Taylor",
    "Brown",
    "Williams",
    "Wilson",
    "Johnson",
    "Davies",
    "Robinson",
    "Wright",
    "Thompson",
    "Evans",
    "Walker",
    "White",
    "Roberts",
    "Green",
    "Hall",
    "Wood",
    "Clarke",
    "Jackson",
    "Turner",
    "Hill",
    "Moore",
    "Cooper",
    "Ward",
    "Harris",
    "Lewis",
    "Martin",
    "King",
    "Baker",
    "Hughes",
    "Edwards",
    "Lee",
    "Allen",
    "Scott",
    "Mitchell",
    "Shaw",
    "Ashworth",
    "Holroyd",
    "Sutcliffe",
    "Ackroyd",
    "Zoë-Ashworth",
    "Fairbairn",
    "Lockwood",
    "Hepworth",
];

const IRISH: Names = Names {
    female: &[
        "Siobhan", "Aoife", "Niamh", "Mary", "Bridget", "Ciara", "Orla", "Sinéad",
    ],
    male: &[
        "Sean", "Patrick", "Declan", "Liam", "Cian", "Conor", "Padraig", "Eoin",
    ],
    family: &[
        "O'Brien",
        "Murphy",
        "Kelly",
        "O'Sullivan",
        "Walsh",
        "Byrne",
        "O'Connor",
        "McCarthy",
        "Doyle",
        "Gallagher",
    ],
};

const OTHER_WHITE: Names = Names {
    female: &[
        "Agnieszka",
        "Katarzyna",
        "Ioana",
        "Elena",
        "Maria",
        "Anna",
        "Giulia",
        "Ana",
        "Lucía",
    ],
    male: &[
        "Piotr", "Tomasz", "Andrei", "Marek", "Luca", "João", "Mateusz", "Stefan", "Pablo",
    ],
    family: &[
        "Nowak",
        "Kowalski",
        "Wiśniewska",
        "Popescu",
        "Rossi",
        "Silva",
        "Kovač",
        "Horvath",
        "Novák",
        "García",
    ],
};

const SOUTH_ASIAN: Names = Names {
    female: &[
        "Priya", "Aisha", "Fatima", "Zara", "Anjali", "Sana", "Nadia", "Ayesha", "Simran",
        "Rukhsana", "Amira", "Harpreet",
    ],
    male: &[
        "Muhammad", "Imran", "Rajesh", "Amir", "Arjun", "Bilal", "Hamza", "Sanjay", "Zain",
        "Rahul", "Tariq", "Gurpreet",
    ],
    family: &[
        "Patel",
        "Khan",
        "Hussain",
        "Begum",
        "Ahmed",
        "Ali",
        "Shah",
        "Singh",
        "Kaur",
        "Sharma",
        "Rahman",
        "Islam",
        "Chowdhury",
        "Iqbal",
        "Mistry",
        "Akhtar",
    ],
};

const BLACK: Names = Names {
    female: &[
        "Amara", "Adaeze", "Grace", "Shanice", "Abena", "Chioma", "Folake", "Keisha", "Precious",
        "Yetunde",
    ],
    male: &[
        "Kwame", "Chidi", "Tunde", "Marcus", "Jerome", "Kofi", "Emeka", "Tyrone", "Samuel",
        "Olumide",
    ],
    family: &[
        "Okafor", "Mensah", "Osei", "Adeyemi", "Campbell", "Boateng", "Okonkwo", "Asante",
        "Clarke", "Francis", "Adebayo", "Grant",
    ],
};

const CHINESE: Names = Names {
    female: &["Mei", "Xin", "Hui", "Ling", "Yan", "Jia"],
    male: &["Wei", "Jun", "Hao", "Ming", "Jian", "Kai"],
    family: &["Chen", "Wong", "Li", "Zhang", "Liu", "Lam", "Cheung", "Ng"],
};

const OTHER: Names = Names {
    female: &[
        "Layla", "Mariam", "Yasmin", "Nour", "Leila", "Hana", "Sofia", "Dina",
    ],
    male: &[
        "Yusuf", "Omar", "Ahmad", "Karim", "Hassan", "Ibrahim", "Mustafa", "Daniel",
    ],
    family: &[
        "Hassan", "Mohamed", "Ibrahim", "Abdi", "Yilmaz", "Haddad", "Nasser", "Farah",
    ],
};

/// An ethnic category (NHS Data Dictionary, England; UK Core CodeSystem) and the names of people
/// who give it.
#[derive(Debug)]
pub(crate) struct Ethnicity {
    pub code: &'static str,
    pub display: &'static str,
    pub names: &'static Names,
    /// For people born before 1970 in the largest group, older given names.
    pub older_names: Option<&'static Names>,
}

const fn e(code: &'static str, display: &'static str, names: &'static Names) -> Ethnicity {
    Ethnicity {
        code,
        display,
        names,
        older_names: None,
    }
}

/// England's ethnic categories, weighted by their share at the 2021 census.
pub(crate) static ETHNICITIES: [(Ethnicity, f64); 17] = [
    (
        Ethnicity {
            code: "A",
            display: "White - British",
            names: &BRITISH_YOUNGER,
            older_names: Some(&BRITISH_OLDER),
        },
        73.5,
    ),
    (e("B", "White - Irish", &IRISH), 0.9),
    (
        e("C", "White - Any other White background", &OTHER_WHITE),
        6.3,
    ),
    (
        e("D", "Mixed - White and Black Caribbean", &BRITISH_YOUNGER),
        0.9,
    ),
    (e("E", "Mixed - White and Black African", &BLACK), 0.5),
    (e("F", "Mixed - White and Asian", &BRITISH_YOUNGER), 0.8),
    (
        e("G", "Mixed - Any other mixed background", &BRITISH_YOUNGER),
        0.8,
    ),
    (e("H", "Asian or Asian British - Indian", &SOUTH_ASIAN), 3.1),
    (
        e("J", "Asian or Asian British - Pakistani", &SOUTH_ASIAN),
        2.7,
    ),
    (
        e("K", "Asian or Asian British - Bangladeshi", &SOUTH_ASIAN),
        1.1,
    ),
    (
        e(
            "L",
            "Asian or Asian British - Any other Asian background",
            &SOUTH_ASIAN,
        ),
        1.6,
    ),
    (e("M", "Black or Black British - Caribbean", &BLACK), 1.1),
    (e("N", "Black or Black British - African", &BLACK), 2.5),
    (
        e(
            "P",
            "Black or Black British - Any other Black background",
            &BLACK,
        ),
        0.5,
    ),
    (e("R", "Other Ethnic Groups - Chinese", &CHINESE), 0.7),
    (
        e("S", "Other Ethnic Groups - Any other ethnic group", &OTHER),
        2.2,
    ),
    (e("Z", "Not stated", &BRITISH_YOUNGER), 0.9),
];

pub(crate) const STREETS: &[&str] = &[
    "Acacia Avenue",
    "Bramble Close",
    "Canal Street",
    "Dale View",
    "Elm Grove",
    "Fountain Street",
    "Greenhill Road",
    "Holly Bank",
    "Ivy Terrace",
    "Juniper Way",
    "Kestrel Drive",
    "Lister Lane",
    "Moorside Road",
    "Newlands Crescent",
    "Orchard Walk",
    "Park Road",
    "Quarry Hill",
    "Rosemount Avenue",
    "Station Road",
    "Tannery Lane",
    "Union Street",
    "Victoria Terrace",
    "Weavers Court",
    "Yew Tree Lane",
    "Albion Street",
    "Beck Side",
    "Chapel Fold",
    "Delph Lane",
    "Empire Parade",
    "Foundry Walk",
    "Gledhow Rise",
    "Heathfield Close",
    "Ings Lane",
    "Kirkgate",
    "Low Green",
    "Mill Race",
    "Nab Lane",
    "Oak Royd",
    "Prospect Place",
    "St Mary's Road",
];

/// A town of the region: its postcode area, telephone area (an Ofcom drama range) and name.
#[derive(Debug)]
pub(crate) struct Town {
    pub name: &'static str,
    pub county: &'static str,
    pub postcode_area: &'static str,
    /// Ofcom's range reserved for drama: `prefix` followed by three digits 000–999.
    pub phone_prefix: &'static str,
}

pub(crate) const TOWNS: &[Town] = &[
    Town {
        name: "Northmoor",
        county: "West Yorkshire",
        postcode_area: "NM",
        phone_prefix: "0113 496 0",
    },
    Town {
        name: "Avonby",
        county: "West Yorkshire",
        postcode_area: "AV",
        phone_prefix: "0114 496 0",
    },
    Town {
        name: "Fellmouth",
        county: "North Yorkshire",
        postcode_area: "FM",
        phone_prefix: "0115 496 0",
    },
    Town {
        name: "Easthaven",
        county: "West Yorkshire",
        postcode_area: "EW",
        phone_prefix: "0116 496 0",
    },
    Town {
        name: "Holmewick",
        county: "South Yorkshire",
        postcode_area: "HW",
        phone_prefix: "0117 496 0",
    },
];

/// Letters allowed in the last two characters of a UK postcode.
pub(crate) const POSTCODE_UNIT_LETTERS: &[u8] = b"ABDEFGHJLNPQRSTUWXYZ";

/// Ofcom's range of mobile numbers for drama: 07700 900000–900999.
pub(crate) fn mobile(n: u64) -> String {
    format!("07700 900{:03}", n % 1000)
}

/// A landline in the town's drama range.
pub(crate) fn landline(town: &Town, n: u64) -> String {
    format!("{}{:03}", town.phone_prefix, n % 1000)
}

/// The part of a name that can go into an email address: ASCII letters, lower case.
pub(crate) fn email_part(name: &str) -> String {
    name.chars()
        .filter_map(|c| {
            let c = match c {
                'ë' | 'é' | 'è' => 'e',
                'á' | 'à' => 'a',
                'ã' => 'a',
                'ó' | 'ò' => 'o',
                'í' => 'i',
                'ś' => 's',
                'č' => 'c',
                'ú' => 'u',
                c => c,
            };
            c.is_ascii_alphabetic().then(|| c.to_ascii_lowercase())
        })
        .collect()
}

/// Given names and surnames of staff (mixed, as the NHS workforce is).
pub(crate) const STAFF_FEMALE: &[&str] = &[
    "Amara",
    "Sarah",
    "Fiona",
    "Grace",
    "Ellen",
    "Priya",
    "Helen",
    "Rachel",
    "Nadia",
    "Claire",
    "Joanna",
    "Mei",
    "Siobhan",
    "Katarzyna",
    "Aisha",
    "Catherine",
];
pub(crate) const STAFF_MALE: &[&str] = &[
    "James",
    "Imran",
    "Tom",
    "Daniel",
    "Rhys",
    "Kwame",
    "Andrew",
    "Rajesh",
    "Mark",
    "Hamza",
    "Christopher",
    "Wei",
    "Patrick",
    "Tomasz",
    "Samuel",
    "Richard",
];
pub(crate) const BRITISH_SURNAMES_FOR_STAFF: &[&str] = &[
    "Okafor",
    "Whitfield",
    "Mensah",
    "Hughes",
    "Collins",
    "Siddiqui",
    "Price",
    "MacLeod",
    "Osei",
    "Evans",
    "Chaudhry",
    "Fletcher",
    "Nair",
    "Lindqvist",
    "Brennan",
    "Adeyemi",
    "Marsden",
    "Kowalczyk",
    "Sharma",
    "Pemberton",
    "Gallagher",
    "Rahman",
    "Thornton",
    "Achebe",
    "Ingram",
    "Varghese",
    "Holloway",
    "Chen",
    "Dunmore",
    "Kaur",
];
