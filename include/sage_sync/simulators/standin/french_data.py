"""Word pools for French demo data: names, streets, places, products.

Every string here is cp1252-encodable. The pools deliberately carry the characters that break naive code:
accents, apostrophes, "œ"/"Œ", "€", the en dash "–", and mixed "CEDEX"/"Cedex" spellings.
"""

from __future__ import annotations

from typing import NamedTuple

LEGAL_FORMS = ("SARL", "SAS", "SA", "EURL", "SNC", "SASU")

ACTIVITIES = (
    "Boulangerie",
    "Pâtisserie",
    "Épicerie",
    "Boucherie",
    "Fromagerie",
    "Librairie",
    "Pharmacie",
    "Brasserie",
    "Cave à vins",
    "Fleuriste",
    "Quincaillerie",
    "Garage",
    "Hôtel",
    "Restaurant",
    "Traiteur",
    "Menuiserie",
    "Plomberie",
    "Électricité",
    "Crèmerie",
    "Chocolaterie",
    "Bistrot",
    "Maison",
)

SURNAMES = (
    "Lefèvre",
    "Dupré",
    "Ménard",
    "Lecœur",
    "Lebœuf",
    "D'Arcy",
    "N'Diaye",
    "L'Hôte",
    "Béranger",
    "Martin",
    "Bernard",
    "Moreau",
    "Fournier",
    "Girard",
    "Bonnet",
    "Rousseau",
    "Guérin",
    "Müller",
    "Faure",
    "André",
    "Mercier",
    "Lemaître",
    "Roché",
    "Chevalier",
    "Garnier",
    "Lefrançois",
    "Dubœuf",
    "Lévêque",
    "Perrin",
    "Barbier",
    "Noël",
    "Vallée",
    "O'Neill",
    "De La Tour d'Auvergne",
    "Fayolle",
    "Tessier",
    "Benoît",
    "Thébault",
    "Jégou",
    "Le Goff",
)

FANCY_NAMES = (
    "L'Œuf d'Or",
    "Le Cœur Volant",
    "Les Délices d'Élise",
    "La Tête à l'Envers",
    "Au Bœuf Couronné",
    "Crème Brûlée",
    "L'Âne Rouge",
    "Saveurs d'Antan",
    "Le Fournil d'Amélie",
    "Sœurs Ménard",
    "La Mère Noël",
    "Côté Jardin",
    "L'Île aux Épices",
    "Le Bœuf à la Mode",
    "Les Œillets de Nice",
    "À la Bonne Franquette",
    "Cœur de Loire",
    "L'Atelier du Goût",
    "Le Petit Mâchon",
    "Château Fréjus",
)

MALE_FIRST_NAMES = (
    "Jérôme",
    "François",
    "Noël",
    "Hervé",
    "André",
    "Loïc",
    "Benoît",
    "Gaël",
    "Thomas",
    "Nicolas",
    "Pierre-Édouard",
    "Raphaël",
    "Jean-Luc",
    "Aurélien",
)
FEMALE_FIRST_NAMES = (
    "Léa",
    "Chloé",
    "Hélène",
    "Anaïs",
    "Gaëlle",
    "Maëlys",
    "Françoise",
    "Cécile",
    "Agnès",
    "Émilie",
    "Marie-Thérèse",
    "Inès",
    "Nathalie",
    "Sophie",
)

JOB_TITLES = (
    "Gérant",
    "Gérante",
    "Directeur général",
    "Directrice administrative",
    "Responsable achats",
    "Comptable",
    "Chef de rayon",
    "Assistante de direction",
    "Chef cuisinier",
    "Responsable qualité",
    "Secrétaire",
    "Acheteur",
)

STREET_TYPES = ("rue", "avenue", "boulevard", "place", "chemin", "allée", "impasse", "quai", "route")
STREET_NAMES = (
    "de l'Église",
    "Jean-Jaurès",
    "du Général-de-Gaulle",
    "Victor-Hugo",
    "des Acacias",
    "de la Paix",
    "du Cœur-Volant",
    "Émile-Zola",
    "de la République",
    "Saint-Éloi",
    "des Œillets",
    "d'Alsace-Lorraine",
    "Pasteur",
    "du Château",
    "de l'Hôtel-de-Ville",
    "Gambetta",
    "des Pêcheurs",
    "Sœur-Thérèse",
)
ADDRESS_NUMBER_SUFFIXES = ("", "", "", "", " bis", " ter")
COMPLEMENTS = (
    "Bâtiment B",
    "ZA du Grand Pré",
    "Résidence Les Érables",
    "Escalier C, 3e étage",
    "Lieu-dit Les Côtes",
    "Zone artisanale Nord",
    "Porte 4",
)
POSTAL_BOX_COMPLEMENTS = ("BP 123", "CS 40012", "BP 52", "CS 70001", "TSA 30000")


class Place(NamedTuple):
    """One postal location: code, city, region label, country and the first digit of landline numbers."""

    postcode: str
    city: str
    region: str | None
    country: str
    phone_zone: str


# Each category is drawn with its own weight (see the generator) so that small dossiers still hold them all.
PLACES_MAINLAND = (
    Place("75011", "Paris", "Île-de-France", "France", "1"),
    Place("75004", "Paris", "Île-de-France", "France", "1"),
    Place("92100", "Boulogne-Billancourt", "Île-de-France", "France", "1"),
    Place("69003", "Lyon", "Auvergne-Rhône-Alpes", "France", "4"),
    Place("13001", "Marseille", "Région Sud", "France", "4"),
    Place("31000", "Toulouse", "Occitanie", "France", "5"),
    Place("06000", "Nice", "Région Sud", "France", "4"),
    Place("44000", "Nantes", "Pays de la Loire", "France", "2"),
    Place("67000", "Strasbourg", "Grand Est", "France", "3"),
    Place("34000", "Montpellier", "Occitanie", "France", "4"),
    Place("33000", "Bordeaux", "Nouvelle-Aquitaine", "France", "5"),
    Place("59000", "Lille", "Hauts-de-France", "France", "3"),
    Place("35000", "Rennes", "Bretagne", "France", "2"),
    Place("42000", "Saint-Étienne", "Auvergne-Rhône-Alpes", "France", "4"),
    Place("38000", "Grenoble", "Auvergne-Rhône-Alpes", "France", "4"),
    Place("21000", "Dijon", "Bourgogne-Franche-Comté", "France", "3"),
    Place("37000", "Tours", "Centre-Val de Loire", "France", "2"),
    Place("01000", "Bourg-en-Bresse", "Auvergne-Rhône-Alpes", "France", "4"),
    Place("02100", "Saint-Quentin", "Hauts-de-France", "France", "3"),
    Place("03200", "Vichy", "Auvergne-Rhône-Alpes", "France", "4"),
    Place("29200", "Brest", "Bretagne", "France", "2"),
    Place("14000", "Caen", "Normandie", "France", "2"),
    Place("76600", "Le Havre", "Normandie", "France", "2"),
    Place("64200", "Biarritz", "Nouvelle-Aquitaine", "France", "5"),
    Place("74400", "Chamonix-Mont-Blanc", "Auvergne-Rhône-Alpes", "France", "4"),
    Place("17000", "La Rochelle", "Nouvelle-Aquitaine", "France", "5"),
    Place("13090", "Aix-en-Provence", "Région Sud", "France", "4"),
    Place("60200", "Compiègne", "Hauts-de-France", "France", "3"),
    Place("71100", "Chalon-sur-Saône", "Bourgogne-Franche-Comté", "France", "3"),
    Place("88000", "Épinal", "Grand Est", "France", "3"),
    Place("51100", "Reims", "Grand Est", "France", "3"),
    Place("45000", "Orléans", None, "France", "2"),
)
PLACES_CEDEX = (
    Place("75834", "Paris Cedex 17", "Île-de-France", "France", "1"),
    Place("92042", "Paris La Défense CEDEX", "Île-de-France", "France", "1"),
    Place("69441", "Lyon Cedex 03", "Auvergne-Rhône-Alpes", "France", "4"),
    Place("13331", "Marseille CEDEX 03", "Région Sud", "France", "4"),
    Place("31035", "Toulouse Cedex 1", "Occitanie", "France", "5"),
    Place("33080", "Bordeaux Cedex", "Nouvelle-Aquitaine", "France", "5"),
)
PLACES_CORSICA = (
    Place("20000", "Ajaccio", "Corse-du-Sud (2A)", "France", "4"),
    Place("20090", "Ajaccio", "Corse-du-Sud (2A)", "France", "4"),
    Place("20137", "Porto-Vecchio", "Corse-du-Sud (2A)", "France", "4"),
    Place("20200", "Bastia", "Haute-Corse (2B)", "France", "4"),
    Place("20260", "Calvi", "Haute-Corse (2B)", "France", "4"),
)
PLACES_OVERSEAS = (
    Place("97400", "Saint-Denis", "La Réunion", "France", "2"),
    Place("97200", "Fort-de-France", "Martinique", "France", "5"),
    Place("97110", "Pointe-à-Pitre", "Guadeloupe", "France", "5"),
    Place("97300", "Cayenne", "Guyane", "France", "5"),
    Place("97600", "Mamoudzou", "Mayotte", "France", "2"),
)
PLACES_MONACO = (
    Place("98000", "Monaco", None, "Monaco", "+377"),
    Place("98000", "Monte-Carlo", None, "Monaco", "+377"),
)
PLACES_ABROAD = (
    Place("1000", "Bruxelles", "Bruxelles-Capitale", "Belgique", "+32"),
    Place("4000", "Liège", "Wallonie", "Belgique", "+32"),
    Place("1204", "Genève", "Genève", "Suisse", "+41"),
    Place("L-1470", "Luxembourg", None, "Luxembourg", "+352"),
    Place("10115", "Berlin", None, "Allemagne", "+49"),
)
PLACE_CATEGORIES = (
    ("mainland", PLACES_MAINLAND, 0.82),
    ("cedex", PLACES_CEDEX, 0.06),
    ("corsica", PLACES_CORSICA, 0.03),
    ("overseas", PLACES_OVERSEAS, 0.04),
    ("monaco", PLACES_MONACO, 0.02),
    ("abroad", PLACES_ABROAD, 0.03),
)

NAF_CODES = (
    "1071C",
    "4711D",
    "6201Z",
    "5610A",
    "4321A",
    "4722Z",
    "1013A",
    "4761Z",
    "5510Z",
    "4773Z",
    "47.11F",
)

COMMENTS = (
    "Client fidèle depuis 2009",
    "Relancer avant le 15 du mois",
    "Livraison uniquement le matin",
    "Ne pas appeler le lundi",
    "Règlement à 30 jours fin de mois",
    "Remise 5 % accordée en 2024",
    "Sonner à l'œil-de-bœuf, porte 2",
    "Encours maximal 5 000 €",
)

SALES_REPS = (
    "Camille Lefèvre",
    "Jérôme Ménard",
    "Hélène Dupré",
    "François Lecœur",
    "Anaïs N'Diaye",
    "Loïc Le Goff",
)

DELIVERY_LABELS = (
    "Siège social",
    "Entrepôt",
    "Magasin principal",
    "Atelier",
    "Boutique centre-ville",
    "Dépôt secondaire",
    "Cuisine centrale",
    "Quai de déchargement",
)

DOCUMENT_COMMENTS = (
    "Livraison prévue la semaine prochaine",
    "Merci de votre confiance !",
    "Remise exceptionnelle accordée",
    "Conditions : paiement à 30 jours fin de mois",
    "Tarif applicable à compter du 1er janvier",
    "Reliquat livré ultérieurement",
    "Geste commercial – « produit abîmé »",
)


class Family(NamedTuple):
    """An article family and its default behaviour."""

    code: str
    label: str
    prefix: str


class Product(NamedTuple):
    """A base product: designation, unit, price range in euro cents, VAT code and kind."""

    design: str
    unit: str
    price_min: int
    price_max: int
    tax: str
    kind: str  # "goods", "service" or "nonstock"


# VAT codes (F_TAXE): the four French rates.
TAXES = (
    ("C20", "TVA collectée 20 %", 20.0),
    ("C10", "TVA collectée 10 %", 10.0),
    ("C55", "TVA collectée 5,5 %", 5.5),
    ("C21", "TVA collectée 2,1 %", 2.1),
)

DEPOTS = ("Dépôt principal", "Entrepôt de Rungis", "Magasin de Bastia", "Dépôt Saint-Denis (Réunion)")

FAMILIES: tuple[tuple[Family, tuple[Product, ...]], ...] = (
    (
        Family("EPICERIE", "Épicerie fine", "EPI"),
        (
            Product("Huile d'olive vierge extra", "Litre", 850, 2400, "C55", "goods"),
            Product("Confiture de fraises", "Pièce", 320, 690, "C55", "goods"),
            Product("Crème de marrons", "Pièce", 290, 590, "C55", "goods"),
            Product("Œufs frais de plein air x12", "Boîte", 380, 520, "C55", "goods"),
            Product("Café moulu pur arabica", "Kg", 1490, 3290, "C55", "goods"),
            Product("Miel de lavande", "Pièce", 790, 1590, "C55", "goods"),
            Product("Sel de Guérande", "Kg", 450, 990, "C55", "goods"),
            Product("Foie gras de canard entier", "Pièce", 2900, 6900, "C55", "goods"),
        ),
    ),
    (
        Family("BOISSONS", "Boissons & spiritueux", "BOI"),
        (
            Product("Champagne brut", "Bouteille", 2200, 5900, "C20", "goods"),
            Product("Côtes-du-Rhône rouge", "Bouteille", 690, 1890, "C20", "goods"),
            Product("Bière blonde artisanale", "Bouteille", 250, 490, "C20", "goods"),
            Product("Cidre brut de Normandie", "Bouteille", 350, 690, "C20", "goods"),
            Product("Crème de cassis de Dijon", "Bouteille", 990, 1990, "C20", "goods"),
            Product("Jus de pomme pétillant", "Bouteille", 280, 450, "C55", "goods"),
        ),
    ),
    (
        Family("FRAIS", "Produits frais", "FRA"),
        (
            Product("Bœuf haché 15 % MG", "Kg", 1190, 1890, "C55", "goods"),
            Product("Comté AOP 18 mois", "Kg", 1990, 3290, "C55", "goods"),
            Product("Beurre doux de baratte", "Pièce", 290, 590, "C55", "goods"),
            Product("Crème fraîche épaisse", "Pièce", 190, 390, "C55", "goods"),
            Product("Saumon fumé d'Écosse", "Kg", 3900, 6900, "C55", "goods"),
        ),
    ),
    (
        Family("BOULANG", "Boulangerie-pâtisserie", "BOU"),
        (
            Product("Baguette tradition", "Pièce", 110, 150, "C55", "goods"),
            Product("Croissant pur beurre", "Pièce", 120, 180, "C55", "goods"),
            Product("Éclair au café", "Pièce", 290, 450, "C55", "goods"),
            Product("Bûche pâtissière", "Pièce", 1900, 4500, "C55", "goods"),
        ),
    ),
    (
        Family("LIVRES", "Librairie", "LIV"),
        (
            Product("Guide des vins de France", "Pièce", 1990, 3490, "C55", "goods"),
            Product("L'Œuvre de Vauban", "Pièce", 2490, 4990, "C55", "goods"),
            Product("Recettes de grand-mère", "Pièce", 990, 1990, "C55", "goods"),
        ),
    ),
    (
        Family("PRESSE", "Presse", "PRE"),
        (
            Product("Quotidien régional", "Pièce", 120, 250, "C21", "goods"),
            Product("Magazine hebdomadaire", "Pièce", 290, 690, "C21", "goods"),
        ),
    ),
    (
        Family("PHARMA", "Parapharmacie & médicaments", "PHA"),
        (
            Product("Médicament remboursable (boîte)", "Boîte", 190, 1590, "C21", "goods"),
            Product("Crème hydratante à l'aloe vera", "Pièce", 890, 1990, "C20", "goods"),
            Product("Protections hygiéniques", "Paquet", 290, 590, "C55", "goods"),
        ),
    ),
    (
        Family("RESTAU", "Restauration", "RES"),
        (
            Product("Menu du jour", "Pièce", 1290, 1990, "C10", "nonstock"),
            Product("Plateau-repas traiteur", "Pièce", 1490, 2890, "C10", "goods"),
            Product("Café gourmand", "Pièce", 690, 990, "C10", "nonstock"),
        ),
    ),
    (
        Family("HYGIENE", "Hygiène & entretien", "HYG"),
        (
            Product("Savon de Marseille", "Pièce", 290, 690, "C20", "goods"),
            Product("Liquide vaisselle écologique", "Litre", 350, 790, "C20", "goods"),
            Product("Éponge végétale", "Lot", 190, 490, "C20", "goods"),
        ),
    ),
    (
        Family("MATERIEL", "Matériel & équipement", "MAT"),
        (
            Product("Trancheuse professionnelle", "Pièce", 49000, 129000, "C20", "goods"),
            Product("Vitrine réfrigérée", "Pièce", 89000, 249000, "C20", "goods"),
            Product("Balance électronique", "Pièce", 9900, 39900, "C20", "goods"),
            Product("Tablier en coton", "Pièce", 1490, 2990, "C20", "goods"),
        ),
    ),
    (
        Family("SERVICES", "Prestations de services", "SER"),
        (
            Product("Heure de main-d'œuvre", "Heure", 4500, 7500, "C20", "service"),
            Product("Forfait installation", "Forfait", 9000, 25000, "C20", "service"),
            Product("Contrat de maintenance annuel", "Forfait", 29000, 89000, "C20", "service"),
            Product("Formation HACCP (1 jour)", "Jour", 39000, 69000, "C20", "service"),
            Product("Déplacement technicien", "Forfait", 3500, 7900, "C10", "service"),
        ),
    ),
    (
        Family("DIVERS", "Frais divers", "DIV"),
        (
            Product("Frais de port", "Forfait", 590, 2490, "C20", "nonstock"),
            Product("Emballage cadeau", "Pièce", 150, 490, "C20", "nonstock"),
            Product("Bon d'achat 50 €", "Pièce", 5000, 5000, "C20", "nonstock"),
            Product("Participation aux frais de dossier", "Forfait", 1000, 3000, "C20", "nonstock"),
        ),
    ),
)

GOODS_VARIANTS = (
    "",
    " bio",
    " – format familial",
    " qualité supérieure",
    " lot de 6",
    " édition limitée",
    " « maison »",
    " sans gluten",
    " réf. professionnelle",
    " x12",
)
FRACTIONAL_UNITS = frozenset({"Kg", "Litre", "Heure"})
