// blindgen.js builds the blind DLP corpus (TestBlindCorpus) from generators
// and validators that nobody on the team wrote: @faker-js/faker, chance and
// per-identifier npm packages, plus vendor token formats. Each value is
// classified by an independent validator package (the oracle), not by the
// generator's own label: a faker "unionpay" number that card-validator calls
// a Visa is labelled card-visa; a faker bitcoin address whose Base58Check
// fails is a near miss. Near misses are valid values with one character
// mutated (check digit changed) that the oracle rejects.
//
// Usage: node blindgen.js SEED N > corpus.jsonl (run by blind_test.go with
// NODE_PATH set to the cached node_modules). Output, one JSON object a line:
//   {"kind":"json"|"text","text":..., "labels":[{"det","s","e","src"}],
//    "near":[{"det","s","e","src"}]}       (byte offsets into text)
//   {"kind":..., "text":..., "clean":true}  (nothing sensitive in it)
//   {"stat":{...}}                          (per-source oracle rejections)
'use strict';

const seed = Number(process.argv[2] || 1);
const N = Number(process.argv[3] || 60);

// Seed Math.random (several generator packages use it) before loading them.
let st = seed >>> 0;
Math.random = () => {
  st = (st + 0x6d2b79f5) >>> 0;
  let t = st;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

// "now" is a fixed day for every generator (faker, chance's expiry dates,
// jsonwebtoken's iat), so a seed gives the same corpus on any day
const RealDate = Date;
const fixedNow = RealDate.parse('2026-06-01T12:00:00Z');
globalThis.Date = class extends RealDate {
  constructor(...a) { super(...(a.length ? a : [fixedNow])); }
  static now() { return fixedNow; }
};

const crypto = require('crypto');
const zlib = require('zlib');
const { Faker, faker, allLocales } = require('@faker-js/faker');
const Chance = require('chance');
const cardValidator = require('card-validator');
const luhn = require('fast-luhn');
const ibantools = require('ibantools');
const aba = require('abavalidator');
const ssnValidator = require('ssn-validator');
const { RandomSSN } = require('ssn');
const nhs = require('nhs-number-validator');
const fnCPF = require('@fnando/cpf');
const fnCNPJ = require('@fnando/cnpj');
const dni = require('better-dni');
const { FinnishSSN } = require('finnish-ssn');
const danishSSN = require('danish-ssn');
const personnummer = require('personnummer');
const norway = require('norwegian-national-id-validator');
const pesel = require('pesel');
const SIN = require('social-insurance-number');
const nric = require('nric');
const curp = require('curp');
const rut = require('@fdograph/rut-utilities');
const { CNP } = require('romanian-personal-identity-code-validator');
const { CodiceFiscale } = require('codice-fiscale-js');
const bsn = require('bsn-js');
const idcard = require('idcard');
const ptid = require('pt-id');
const aadhaar = require('aadhaar-validator');
const isValidABN = require('is-valid-abn').default;
const steuerID = require('german-tax-id-validator').default;
const ccgen = require('creditcard-generator');
const bs58check = require('bs58check').default;
const { bech32, bech32m } = require('bech32');
const wif = require('wif');
const xrp = require('ripple-address-codec');
const { getAddress } = require('ethers');
const jwt = require('jsonwebtoken');
const sshpk = require('sshpk');
const phone = require('libphonenumber-js/max');

const refDate = new Date(fixedNow);
faker.seed(seed);
faker.setDefaultRefDate(refDate);
const chance = new Chance(seed);
const f = faker;
const pick = (a) => a[f.number.int({ min: 0, max: a.length - 1 })];
const int = (min, max) => f.number.int({ min, max });
const bytes = (n) => Buffer.from(f.helpers.multiple(() => int(0, 255), { count: n }));
const digits = (n) => f.string.numeric({ length: n, allowLeadingZeros: true });
const B62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

// bumpAt changes the digit (or letter) at index i to the next one.
function bumpAt(v, i) {
  const c = v[i];
  let n;
  if (c >= '0' && c <= '9') n = String.fromCharCode(48 + ((c.charCodeAt(0) - 48 + 1) % 10));
  else if (c >= 'A' && c <= 'Z') n = String.fromCharCode(65 + ((c.charCodeAt(0) - 65 + 1) % 26));
  else if (c >= 'a' && c <= 'z') n = String.fromCharCode(97 + ((c.charCodeAt(0) - 97 + 1) % 26));
  else return null;
  return v.slice(0, i) + n + v.slice(i + 1);
}
// lastAlnum is the index of the last letter or digit (the check character).
function lastAlnum(v) {
  for (let i = v.length - 1; i >= 0; i--) if (/[0-9A-Za-z]/.test(v[i])) return i;
  return -1;
}
const bumpLast = (v) => bumpAt(v, lastAlnum(v));
// bumpDigitFromEnd changes the k-th digit from the end (k=0: last digit).
function bumpDigitFromEnd(v, k) {
  for (let i = v.length - 1; i >= 0; i--) if (/[0-9]/.test(v[i]) && k-- === 0) return bumpAt(v, i);
  return null;
}
const b58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';
const bumpB58 = (v) => { const i = v.length - 1 - int(0, 5); return v.slice(0, i) + b58[(b58.indexOf(v[i]) + 1) % 58] + v.slice(i + 1); };
const bc32 = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
const bumpBech = (v) => { const i = v.length - 1 - int(0, 5); return v.slice(0, i) + bc32[(bc32.indexOf(v[i]) + 1) % 32] + v.slice(i + 1); };
const birth = (min = 18, max = 90) => f.date.birthdate({ mode: 'age', min, max });
const dd = (n) => String(n).padStart(2, '0');
function until(gen, ok, tries = 20000) {
  for (let i = 0; i < tries; i++) { const v = gen(); if (ok(v)) return v; }
  throw new Error('generator found no valid value');
}
function group(v, sep, ...sizes) {
  const out = [];
  let i = 0;
  for (const s of sizes) { out.push(v.slice(i, i + s)); i += s; }
  if (i < v.length) out.push(v.slice(i));
  return out.join(sep);
}

// ---- cards: generated by faker / chance / creditcard-generator, brand by card-validator
const brandDet = { visa: 'card-visa', mastercard: 'card-mastercard', 'american-express': 'card-amex', 'diners-club': 'card-diners', discover: 'card-discover', jcb: 'card-jcb', unionpay: 'card-unionpay', maestro: 'card-maestro', mir: 'card-mir', verve: 'card-verve' };
function cardOracle(v) {
  const d = v.replace(/[\s-]/g, '');
  if (!luhn(d)) return { ok: false };
  // every brand card-validator sees in the number at its length: an
  // overlap (62xxxx is UnionPay and Maestro to it) accepts either
  const dets = cardValidator.creditCardType.default(d).filter((c) => c.lengths.includes(d.length)).map((c) => brandDet[c.type]).filter(Boolean);
  if (!dets.length) return { ok: null }; // a brand it has no detector for, or a length it rejects (13-digit Visa)
  // 65xxxx is shared by Discover and RuPay (card-validator has no RuPay)
  if (dets.includes('card-discover') && d.startsWith('65')) dets.push('card-rupay');
  // 62 is UnionPay's IIN; card-validator gives part of it to Maestro's catch-all 6
  if (d.startsWith('62') && !dets.includes('card-unionpay')) dets.push('card-unionpay');
  return { ok: true, det: dets.join('|') };
}
const cardSources = [
  ...['visa', 'mastercard', 'american_express', 'discover', 'jcb', 'diners_club', 'maestro', 'unionpay', 'mir'].map((i) => ['faker:' + i, () => f.finance.creditCardNumber({ issuer: i })]),
  ...['visa', 'mc', 'amex', 'discover', 'jcb', 'dcintl', 'maestro', 'chinaunion'].map((t) => ['chance:' + t, () => chance.cc({ type: t })]),
  ...['VISA', 'MasterCard', 'Amex', 'Diners', 'Discover', 'JCB'].map((s) => ['creditcard-generator:' + s, () => ccgen.GenCC(s, 1)[0]]),
];

// ---- the identifier types: context (phrase, JSON key), generator, oracle
const T = [];
const add = (o) => T.push(o);

add({ det: 'card', mult: 6, ctx: [['card number', 'card_number'], ['credit card', 'cc'], ['PAN', 'pan'], ['Kartennummer', 'kartennummer']], sources: cardSources, oracle: cardOracle, num: true,
  near: (v) => bumpDigitFromEnd(v, 0) });
add({ det: 'card-cvv', ctx: [['CVV', 'cvv'], ['CVC', 'cvc'], ['security code', 'security_code']], sources: [['faker:creditCardCVV', () => f.finance.creditCardCVV()]] });
add({ det: 'card-expiry', ctx: [['expiry', 'expiry'], ['exp date', 'exp_date'], ['expiration date', 'expiration']], sources: [['chance:exp', () => chance.exp()], ['faker:future', () => { const d = f.date.future({ years: 6 }); return dd(d.getMonth() + 1) + '/' + String(d.getFullYear()).slice(2); }]] });

add({ det: 'iban', ctx: [['IBAN', 'iban'], ['bank account', 'bank_account'], ['Kontonummer (IBAN)', 'iban']], sources: [['faker:iban', () => f.finance.iban()], ['faker:iban formatted', () => f.finance.iban({ formatted: true })], ['chance:iban', () => chance.iban()]],
  oracle: (v) => {
    const r = ibantools.validateIBAN(ibantools.electronicFormatIBAN(v));
    if (r.valid) return { ok: true };
    // a national (BBAN) check-digit failure alone: mod 97 holds, the bank's own check does not; unlabelled
    const E = ibantools.ValidationErrorsIBAN;
    if (r.errorCodes.every((c) => c === E.WrongAccountBankBranchChecksum || c === E.WrongBBANFormat)) return { ok: null };
    return { ok: false };
  },
  near: (v) => bumpDigitFromEnd(v, int(0, 6)) });
add({ det: 'swift-bic', ctx: [['BIC', 'bic'], ['SWIFT code', 'swift_code'], ['SWIFT/BIC', 'swift']], sources: [['faker:bic', () => f.finance.bic()], ['faker:bic branch', () => f.finance.bic({ includeBranchCode: true })]],
  oracle: (v) => ({ ok: ibantools.isValidBIC(v) }), near: (v) => v.slice(0, 4) + 'QZ' + v.slice(6) });
add({ det: 'aba-routing', ctx: [['routing number', 'routing_number'], ['ABA', 'aba'], ['RTN', 'rtn']], sources: [['faker:routingNumber', () => f.finance.routingNumber()]], oracle: (v) => ({ ok: aba.validate(v) }), near: bumpLast });
add({ det: 'us-bank-account', ctx: [['account number', 'account_number'], ['checking account', 'checking_account']], sources: [['faker:accountNumber', () => f.finance.accountNumber({ length: pick([8, 10, 12]) })]] });

add({ det: 'us-ssn', ctx: [['SSN', 'ssn'], ['social security number', 'social_security_number'], ['Social Security No.', 'ssn']], sources: [['chance:ssn', () => chance.ssn()], ['chance:ssn plain', () => chance.ssn({ dashes: false })], ['ssn:RandomSSN', () => new RandomSSN().value().toFormattedString()]],
  oracle: (v) => ({ ok: ssnValidator.isValid(v) && !/^9/.test(v) }), near: (v) => { const d = v.replace(/-/g, ''); const m = d.slice(0, 3) + '00' + d.slice(5); return v.includes('-') ? group(m, '-', 3, 2) : m; } });
add({ det: 'uk-nhs', ctx: [['NHS number', 'nhs_number'], ['NHS No', 'nhs_no']], sources: [['random+nhs-number-validator', () => { const v = until(() => digits(10), (x) => x[0] !== '0' && nhs.validate(x)); return pick([v, group(v, ' ', 3, 3)]); }]],
  oracle: (v) => ({ ok: nhs.validate(v.replace(/ /g, '')) }), near: bumpLast });
add({ det: 'br-cpf', ctx: [['CPF', 'cpf']], sources: [['@fnando/cpf', () => fnCPF.generate(f.datatype.boolean())], ['chance:cpf', () => chance.cpf()]], oracle: (v) => ({ ok: fnCPF.isValid(v) }), near: bumpLast });
add({ det: 'br-cnpj', ctx: [['CNPJ', 'cnpj']], sources: [['chance:cnpj', () => chance.cnpj()], ['@fnando/cnpj (alphanumeric, RFB 2026)', () => fnCNPJ.generate(f.datatype.boolean())]], oracle: (v) => ({ ok: fnCNPJ.isValid(v) }), near: bumpLast });
add({ det: 'es-dni', ctx: [['DNI', 'dni'], ['NIF', 'nif']], sources: [['better-dni:randomNIF', () => dni.randomNIF()]], oracle: (v) => ({ ok: dni.isValid(v) }), near: bumpLast });
add({ det: 'es-nie', ctx: [['NIE', 'nie']], sources: [['better-dni:randomNIE', () => dni.randomNIE()]], oracle: (v) => ({ ok: dni.isValid(v) }), near: bumpLast });
add({ det: 'fi-hetu', ctx: [['henkilötunnus', 'henkilotunnus'], ['HETU', 'hetu']], sources: [['finnish-ssn:createWithAge', () => FinnishSSN.createWithAge(int(1, 99))]], oracle: (v) => ({ ok: FinnishSSN.validate(v) }), near: bumpLast });
add({ det: 'dk-cpr', ctx: [['CPR-nummer', 'cpr_nummer'], ['CPR', 'cpr']], sources: [['birthdate+danish-ssn', () => until(() => { const b = birth(); return dd(b.getDate()) + dd(b.getMonth() + 1) + String(b.getFullYear()).slice(2) + '-' + digits(4); }, (x) => danishSSN.isValid(x))]],
  oracle: (v) => ({ ok: danishSSN.isValid(v) }), near: bumpLast });
add({ det: 'se-personnummer', ctx: [['personnummer', 'personnummer']], sources: [['birthdate+personnummer', () => until(() => { const b = birth(); const y = String(b.getFullYear()); return pick([y, y.slice(2)]) + dd(b.getMonth() + 1) + dd(b.getDate()) + '-' + digits(4); }, (x) => personnummer.valid(x))]],
  oracle: (v) => ({ ok: personnummer.valid(v) }), near: bumpLast });
add({ det: 'no-fodselsnummer', ctx: [['fødselsnummer', 'fodselsnummer'], ['personnummer (NO)', 'fnr']], sources: [['birthdate+norwegian-national-id-validator', () => until(() => { const b = birth(); return dd(b.getDate()) + dd(b.getMonth() + 1) + String(b.getFullYear()).slice(2) + digits(5); }, (x) => norway.validateNorwegianIdNumber(x))]],
  oracle: (v) => ({ ok: norway.validateNorwegianIdNumber(v) }), near: bumpLast });
add({ det: 'pl-pesel', ctx: [['PESEL', 'pesel']], sources: [['pesel:generate', () => pesel.generate()]], near: bumpLast });
add({ det: 'ca-sin', ctx: [['SIN', 'sin'], ['social insurance number', 'social_insurance_number']], sources: [['social-insurance-number:generate', () => { const v = SIN.generate(); return pick([v, group(v, ' ', 3, 3), group(v, '-', 3, 3)]); }]],
  oracle: (v) => ({ ok: new SIN.SocialInsuranceNumber(v.replace(/[ -]/g, '')).isValid() }), near: bumpLast });
add({ det: 'sg-nric', ctx: [['NRIC', 'nric'], ['NRIC/FIN', 'nric_fin']], sources: [['nric:generateNRIC', () => nric.generateNRIC()], ['nric:generateFIN', () => nric.generateFIN()]], oracle: (v) => ({ ok: nric.validate(v) }), near: bumpLast });
add({ det: 'mx-curp', ctx: [['CURP', 'curp']], sources: [['curp:generar', () => {
  const p = curp.getPersona();
  const b = birth();
  Object.assign(p, { nombre: f.person.firstName(), apellidoPaterno: f.person.lastName(), apellidoMaterno: f.person.lastName(), genero: pick([curp.GENERO.MASCULINO, curp.GENERO.FEMENINO]), estado: pick(Object.values(curp.ESTADO)), fechaNacimiento: dd(b.getDate()) + '-' + dd(b.getMonth() + 1) + '-' + b.getFullYear() });
  return curp.generar(p);
}]], oracle: (v) => ({ ok: curp.validar(v) }), near: bumpLast });
add({ det: 'cl-rut', ctx: [['RUT', 'rut'], ['RUN', 'run']], sources: [['@fdograph/rut-utilities:generateRut', () => rut.generateRut()]], oracle: (v) => ({ ok: rut.validateRut(v) }), near: (v) => { const i = v.length - 1; return v.slice(0, i) + (v[i] === 'K' ? '0' : v[i] === '9' ? 'K' : String(Number(v[i]) + 1)); } });
add({ det: 'ro-cnp', ctx: [['CNP', 'cnp'], ['cod numeric personal', 'cod_numeric_personal']], sources: [['birthdate+romanian-personal-identity-code-validator', () => until(() => { const b = birth(); const y = b.getFullYear(); const s = y >= 2000 ? pick(['5', '6']) : pick(['1', '2']); return s + String(y).slice(2) + dd(b.getMonth() + 1) + dd(b.getDate()) + dd(int(1, 46)) + digits(4); }, (x) => new CNP(x).isValid())]],
  oracle: (v) => ({ ok: new CNP(v).isValid() }), near: bumpLast });
add({ det: 'it-codice-fiscale', ctx: [['codice fiscale', 'codice_fiscale'], ['CF', 'cf']], sources: [['codice-fiscale-js', () => {
  const b = birth();
  return new CodiceFiscale({ name: f.person.firstName(), surname: f.person.lastName(), gender: pick(['M', 'F']), day: b.getDate(), month: b.getMonth() + 1, year: b.getFullYear(), birthplace: pick(['Roma', 'Milano', 'Napoli', 'Torino', 'Bologna']) }).toString();
}]], oracle: (v) => ({ ok: CodiceFiscale.check(v) }), near: bumpLast });
add({ det: 'nl-bsn', ctx: [['BSN', 'bsn'], ['burgerservicenummer', 'burgerservicenummer']], sources: [['bsn-js:generateBSN', () => bsn.generateBSN()]], oracle: (v) => ({ ok: bsn.isValidBSN(v) }), near: bumpLast });
add({ det: 'cn-resident-id', ctx: [['身份证号', 'id_card_no'], ['resident ID', 'resident_id']], sources: [['idcard:generateIdcard', () => idcard.generateIdcard()]], oracle: (v) => ({ ok: idcard.verify(v) }), near: bumpLast });
add({ det: 'pt-nif', ctx: [['NIF', 'nif'], ['número de contribuinte', 'numero_contribuinte']], sources: [['pt-id:nif.generate', () => ptid.nif.generate()]], oracle: (v) => ({ ok: ptid.nif.validate(v) }), near: bumpLast });
add({ det: 'in-aadhaar', ctx: [['Aadhaar', 'aadhaar'], ['Aadhaar number', 'aadhaar_number']], sources: [['random+aadhaar-validator', () => { const v = until(() => String(int(2, 9)) + digits(11), (x) => aadhaar.isValidNumber(x)); return pick([v, group(v, ' ', 4, 4)]); }]],
  oracle: (v) => ({ ok: aadhaar.isValidNumber(v.replace(/ /g, '')) }), near: bumpLast });
add({ det: 'au-abn', ctx: [['ABN', 'abn']], sources: [['random+is-valid-abn', () => { const v = until(() => String(int(1, 9)) + digits(10), (x) => isValidABN(x)); return pick([v, group(v, ' ', 2, 3, 3)]); }]],
  oracle: (v) => ({ ok: isValidABN(v.replace(/ /g, '')) }), near: bumpLast });
add({ det: 'de-steuer-id', ctx: [['Steuer-ID', 'steuer_id'], ['Steueridentifikationsnummer', 'steueridentifikationsnummer']], sources: [['random+german-tax-id-validator', () => until(() => String(int(1, 9)) + digits(10), (x) => steuerID.validate(x), 400000)]],
  oracle: (v) => ({ ok: steuerID.validate(v) }), near: bumpLast });
// the npm 'npi' package accepts numbers that fail CMS's check (Luhn over
// 80840 + the NPI): the oracle is that published rule, with fast-luhn
const npiOK = (v) => luhn('80840' + v);
add({ det: 'us-npi', ctx: [['NPI', 'npi'], ['provider NPI', 'provider_npi']], sources: [['random+CMS check (fast-luhn)', () => until(() => pick(['1', '2']) + digits(9), npiOK)]], oracle: (v) => ({ ok: npiOK(v) }), near: bumpLast, num: true });

// ---- secrets: real keys and JWTs from node/jsonwebtoken/sshpk, vendor token formats
const crcToken = (prefix) => { const body = f.string.alphanumeric(30); let c = zlib.crc32(body), s = ''; while (c > 0) { s = B62[c % 62] + s; c = Math.floor(c / 62); } return prefix + body + s.padStart(6, '0'); };
const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
const ed = crypto.generateKeyPairSync('ed25519');
const urlSafe = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const b64chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const from = (set, n) => f.string.fromCharacters(set, n);
const jwtPayload = () => ({ sub: f.string.uuid(), name: f.person.fullName(), iat: int(1.7e9, 1.8e9), scope: pick(['read', 'read write', 'admin']) });
add({ det: 'jwt', ctx: [['Authorization: Bearer', 'access_token'], ['id_token', 'id_token'], ['token', 'token']], sources: [
  ['jsonwebtoken:HS256', () => jwt.sign(jwtPayload(), f.string.alphanumeric(32), { algorithm: 'HS256' })],
  ['jsonwebtoken:RS256', () => jwt.sign(jwtPayload(), rsa.privateKey, { algorithm: 'RS256' })],
  ['jsonwebtoken:ES256', () => jwt.sign(jwtPayload(), ec.privateKey, { algorithm: 'ES256' })],
  ['faker:jwt', () => f.internet.jwt()],
], near: (v) => Buffer.from(JSON.stringify({ kind: 'cursor', page: int(1, 99) })).toString('base64url') + v.slice(v.indexOf('.')) });
const pemKey = () => {
  switch (int(0, 5)) {
    case 0: return rsa.privateKey.export({ type: 'pkcs1', format: 'pem' });
    case 1: return rsa.privateKey.export({ type: 'pkcs8', format: 'pem' });
    case 2: return ec.privateKey.export({ type: 'sec1', format: 'pem' });
    case 3: return ec.privateKey.export({ type: 'pkcs8', format: 'pem' });
    case 4: return ed.privateKey.export({ type: 'pkcs8', format: 'pem' });
    default: return ec.privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: f.internet.password() });
  }
};
add({ det: 'pem-private-key', ctx: [['private key', 'private_key'], ['tls.key', 'tls_key']], sources: [['node:crypto generateKeyPair', () => pemKey().trim()]],
  near: () => pick([rsa.publicKey.export({ type: 'spki', format: 'pem' }), ec.publicKey.export({ type: 'spki', format: 'pem' }), rsa.publicKey.export({ type: 'pkcs1', format: 'pem' })]).trim() });
add({ det: 'openssh-private-key', ctx: [['id_ed25519', 'ssh_key'], ['deploy key', 'deploy_key']], sources: [['sshpk:openssh', () => sshpk.parsePrivateKey(pick([ed, ec]).privateKey.export({ type: 'pkcs8', format: 'pem' }), 'pem').toString('openssh').trim()]],
  near: () => sshpk.parsePrivateKey(ed.privateKey.export({ type: 'pkcs8', format: 'pem' }), 'pem').toPublic().toString('ssh') + ' deploy@ci' });
for (const [det, prefix] of [['github-pat', 'ghp_'], ['github-oauth-token', 'gho_'], ['github-user-token', 'ghu_'], ['github-server-token', 'ghs_'], ['github-refresh-token', 'ghr_'], ['npm-token', 'npm_']]) {
  add({ det, ctx: [['token', 'token'], [prefix === 'npm_' ? 'NPM_TOKEN' : 'GITHUB_TOKEN', prefix === 'npm_' ? 'npm_token' : 'github_token']], sources: [['vendor format (CRC32 base62)', () => crcToken(prefix)]], near: (v) => bumpAt(v, 4 + int(0, 29)) });
}
const vendor = [
  ['aws-access-key-id', [['aws_access_key_id', 'aws_access_key_id'], ['AccessKeyId', 'AccessKeyId']], () => pick(['AKIA', 'ASIA']) + from('ABCDEFGHIJKLMNOPQRSTUVWXYZ234567', 16)],
  ['aws-secret-access-key', [['aws_secret_access_key', 'aws_secret_access_key'], ['SecretAccessKey', 'SecretAccessKey']], () => from(b64chars, 40)],
  ['slack-bot-token', [['SLACK_BOT_TOKEN', 'slack_bot_token']], () => 'xoxb-' + digits(int(10, 13)) + '-' + digits(int(10, 13)) + '-' + f.string.alphanumeric(24)],
  ['slack-webhook', [['webhook', 'webhook_url']], () => 'hooks.slack.com/services/T' + f.string.alphanumeric({ length: 10, casing: 'upper' }) + '/B' + f.string.alphanumeric({ length: 10, casing: 'upper' }) + '/' + f.string.alphanumeric(24)],
  ['stripe-secret-key', [['STRIPE_SECRET_KEY', 'stripe_secret_key']], () => 'sk_live_' + f.string.alphanumeric(pick([24, 99]))],
  ['stripe-test-key', [['STRIPE_SECRET_KEY', 'stripe_secret_key']], () => 'sk_test_' + f.string.alphanumeric(pick([24, 99]))],
  ['gcp-api-key', [['api key', 'api_key'], ['GOOGLE_API_KEY', 'google_api_key']], () => 'AIza' + from(urlSafe, 35)],
  ['sendgrid-api-key', [['SENDGRID_API_KEY', 'sendgrid_api_key']], () => 'SG.' + from(urlSafe, 22) + '.' + from(urlSafe, 43)],
  ['twilio-api-key', [['TWILIO_API_KEY', 'twilio_api_key']], () => 'SK' + f.string.hexadecimal({ length: 32, casing: 'lower', prefix: '' })],
  ['anthropic-api-key', [['ANTHROPIC_API_KEY', 'anthropic_api_key']], () => 'sk-ant-api03-' + from(urlSafe, 93) + 'AA'],
  ['huggingface-token', [['HF_TOKEN', 'hf_token']], () => 'hf_' + f.string.alpha(34)],
  ['digitalocean-token', [['DIGITALOCEAN_TOKEN', 'do_token']], () => 'dop_v1_' + f.string.hexadecimal({ length: 64, casing: 'lower', prefix: '' })],
  ['gitlab-pat', [['GITLAB_TOKEN', 'gitlab_token']], () => 'glpat-' + from(urlSafe, 20)],
  ['telegram-bot-token', [['bot token', 'bot_token']], () => digits(1).replace('0', '7') + digits(int(7, 9)) + ':AA' + from(urlSafe, 33)],
  ['mailchimp-key', [['MAILCHIMP_API_KEY', 'mailchimp_api_key']], () => f.string.hexadecimal({ length: 32, casing: 'lower', prefix: '' }) + '-us' + int(1, 21)],
  ['password-assignment', [['password', 'password'], ['db_password', 'db_password']], () => f.internet.password({ length: int(12, 20) })],
  ['generic-secret-assignment', [['client_secret', 'client_secret'], ['api_secret', 'api_secret']], () => f.string.alphanumeric(40)],
];
for (const [det, ctx, gen] of vendor) add({ det, ctx, sources: [['vendor format', gen]], wrap: det === 'slack-webhook' ? () => ({ pre: 'https://', post: '' }) : undefined });
for (const [det, scheme] of [['url-password-postgres', 'postgres'], ['url-password-mysql', 'mysql'], ['url-password-mongodb', 'mongodb+srv'], ['url-password-redis', 'redis'], ['url-password-amqp', 'amqp'], ['url-password-http', 'https']]) {
  add({ det, ctx: [['DATABASE_URL', 'url'], ['connection string', 'dsn']], wrap: () => wrapURL(scheme), sources: [['faker:internet.password', () => f.internet.password({ length: int(10, 18), pattern: /[A-Za-z0-9]/ })]] });
}

// ---- crypto addresses: bs58check / bech32 / ripple-address-codec / ethers over random payloads; faker's as generated
const b58addr = (ver, n = 20) => bs58check.encode(Buffer.concat([Buffer.from([ver]), bytes(n)]));
const b58oracle = (vers) => (v) => { try { const d = bs58check.decode(v); return { ok: d.length === 21 && vers.includes(d[0]) }; } catch { return { ok: false }; } };
const bechOracle = (hrp) => (v) => {
  for (const enc of [bech32, bech32m]) {
    try {
      const d = enc.decode(v);
      const ver = d.words[0];
      const prog = enc.fromWords(d.words.slice(1));
      if (d.prefix !== hrp) return { ok: false };
      if ((ver === 0) !== (enc === bech32)) continue;
      if (ver === 0 && prog.length !== 20 && prog.length !== 32) return { ok: false };
      return { ok: prog.length >= 2 && prog.length <= 40 && ver <= 16 };
    } catch { /* try the other */ }
  }
  return { ok: false };
};
add({ det: 'btc-address', ctx: [['BTC address', 'btc_address'], ['wallet', 'wallet']], sources: [['bs58check:p2pkh', () => b58addr(0)], ['bs58check:p2sh', () => b58addr(5)], ['faker:bitcoinAddress legacy', () => f.finance.bitcoinAddress({ type: 'legacy' })], ['faker:bitcoinAddress segwit(p2sh)', () => f.finance.bitcoinAddress({ type: 'segwit' })]],
  oracle: b58oracle([0, 5]), near: bumpB58 });
add({ det: 'btc-bech32-address', ctx: [['BTC address', 'btc_address'], ['payout address', 'payout_address']], sources: [
  ['bech32:p2wpkh', () => bech32.encode('bc', [0, ...bech32.toWords(bytes(20))])],
  ['bech32m:p2tr', () => bech32m.encode('bc', [1, ...bech32m.toWords(bytes(32))])],
  ['faker:bitcoinAddress bech32', () => f.finance.bitcoinAddress({ type: 'bech32' })],
  ['faker:bitcoinAddress taproot', () => f.finance.bitcoinAddress({ type: 'taproot' })],
], oracle: bechOracle('bc'), near: bumpBech });
add({ det: 'ltc-address', ctx: [['LTC address', 'ltc_address']], sources: [['bs58check:ltc', () => b58addr(pick([0x30, 0x32]))], ['faker:litecoinAddress', () => f.finance.litecoinAddress()]], oracle: b58oracle([0x30, 0x32, 0x05]), near: bumpB58 });
add({ det: 'ltc-bech32-address', ctx: [['LTC address', 'ltc_address']], sources: [['bech32:ltc', () => bech32.encode('ltc', [0, ...bech32.toWords(bytes(20))])]], oracle: bechOracle('ltc'), near: bumpBech });
add({ det: 'doge-address', ctx: [['DOGE address', 'doge_address']], sources: [['bs58check:doge', () => b58addr(pick([0x1e, 0x16]))]], oracle: b58oracle([0x1e, 0x16]), near: bumpB58 });
add({ det: 'tron-address', ctx: [['TRON address', 'trx_address']], sources: [['bs58check:tron', () => b58addr(0x41)]], oracle: b58oracle([0x41]), near: bumpB58 });
add({ det: 'xrp-address', ctx: [['XRP address', 'xrp_address']], sources: [['ripple-address-codec', () => xrp.encodeAccountID(bytes(20))]], oracle: (v) => ({ ok: xrp.isValidClassicAddress(v) }), near: (v) => { const A = 'rpshnaf39wBUDNEGHJKLM4PQRST7VWXYZ2bcdeCg65jkm8oFqi1tuvAxyz'; const i = v.length - 1 - int(0, 5); return v.slice(0, i) + A[(A.indexOf(v[i]) + 1) % 58] + v.slice(i + 1); } });
add({ det: 'btc-wif-private-key', ctx: [['WIF', 'wif'], ['private key', 'private_key']], sources: [['wif:encode', () => wif.encode({ version: 128, privateKey: bytes(32), compressed: f.datatype.boolean() })]],
  oracle: (v) => { try { return { ok: wif.decode(v).version === 128 }; } catch { return { ok: false }; } }, near: bumpB58 });
add({ det: 'eth-address', ctx: [['ETH address', 'eth_address'], ['wallet', 'wallet']], sources: [['faker:ethereumAddress', () => f.finance.ethereumAddress()], ['ethers:getAddress (EIP-55)', () => getAddress(f.finance.ethereumAddress())]],
  oracle: (v) => { try { getAddress(v); return { ok: true }; } catch { return { ok: false }; } },
  near: (v) => { // flip the case of one letter of a checksummed address
    const a = getAddress(v.toLowerCase());
    const idx = [...a].map((c, i) => (/[a-fA-F]/.test(c) && i > 1 ? i : -1)).filter((i) => i >= 0);
    if (!idx.length) return null;
    const i = pick(idx);
    return a.slice(0, i) + (a[i] === a[i].toLowerCase() ? a[i].toUpperCase() : a[i].toLowerCase()) + a.slice(i + 1);
  } });

// ---- contact / PII: faker, phones classified by libphonenumber-js
add({ det: 'email', ctx: [['email', 'email'], ['contact', 'contact']], sources: [['faker:internet.email', () => f.internet.email()], ['faker:internet.exampleEmail', () => f.internet.exampleEmail()]] });
add({ det: 'ipv4', ctx: [['client IP', 'client_ip'], ['remote_addr', 'remote_addr']], sources: [['faker:internet.ipv4', () => f.internet.ipv4()]] });
add({ det: 'ipv6', ctx: [['client IP', 'client_ip']], sources: [['faker:internet.ipv6', () => f.internet.ipv6()]] });
add({ det: 'mac-address', ctx: [['MAC', 'mac'], ['hardware address', 'hw_addr']], sources: [['faker:internet.mac', () => f.internet.mac({ separator: pick([':', '-']) })]] });
const fk = {};
for (const l of ['en_US', 'en_GB', 'fr', 'de', 'es', 'it', 'en_AU', 'pt_BR', 'nl', 'pl']) fk[l] = new Faker({ locale: [allLocales[l], allLocales.en] });
for (const l in fk) { fk[l].seed(seed + l.length); fk[l].setDefaultRefDate(refDate); }
const region = { en_US: 'US', en_GB: 'GB', fr: 'FR', de: 'DE', es: 'ES', it: 'IT', en_AU: 'AU', pt_BR: 'BR', nl: 'NL', pl: 'PL' };
const phoneDet = { US: 'phone-nanp', GB: 'phone-uk', FR: 'phone-fr' };
add({ det: 'phone', ctx: [['phone', 'phone'], ['tel', 'tel'], ['mobile', 'mobile']], sources: [
  ...Object.keys(fk).map((l) => ['faker:' + l + ' international', () => fk[l].phone.number({ style: 'international' })]),
  ...['en_US', 'en_GB', 'fr'].map((l) => ['faker:' + l + ' national', () => fk[l].phone.number({ style: 'national' })]),
], oracle: (v) => {
  // libphonenumber-js decides; only the forms the package claims are labelled
  if (v.startsWith('+')) return { ok: phone.isValidPhoneNumber(v) ? true : null, det: 'phone-intl' };
  for (const r of ['US', 'GB', 'FR']) if (phone.isValidPhoneNumber(v, r)) return { ok: true, det: phoneDet[r] };
  return { ok: null };
}, near: (v) => v.startsWith('+') ? v.slice(0, -3) : null, nearOracle: (v) => !phone.isPossiblePhoneNumber(v) });
add({ det: 'date-of-birth', ctx: [['date of birth', 'date_of_birth'], ['DOB', 'dob'], ['born', 'birth_date']], sources: [['faker:birthdate', () => { const b = birth(); return pick([b.toISOString().slice(0, 10), dd(b.getMonth() + 1) + '/' + dd(b.getDate()) + '/' + b.getFullYear()]); }]] });

// ---- layouts: MCP tool results, JSON rows, logs, prose, CSV, env files
const PH = '\u0000V\u0000';
const enc = (s) => Buffer.byteLength(s, 'utf8');
function lay(t, ctx, val, asNum) {
  const [phrase, key] = ctx;
  const name = f.person.fullName();
  const city = f.location.city();
  let text, kind = 'text';
  const kindOf = asNum ? 0 : int(0, 6);
  const json = (obj) => { kind = 'json'; return JSON.stringify(obj); };
  switch (kindOf) {
    case 0: // JSON row (numbers stay numbers when asNum)
      text = json({ data: [{ id: f.string.uuid(), customer: name, city, [key]: PH, updated_at: f.date.recent().toISOString() }], page: 1, has_more: false });
      break;
    case 1: // MCP tools/call result, text content
      text = json({ jsonrpc: '2.0', id: int(1, 999), result: { content: [{ type: 'text', text: `Found 1 record for ${name} (${f.company.name()}, ${city}). ${phrase}: ${PH}. ${f.lorem.sentence()}` }], isError: false } });
      break;
    case 2: // MCP structured content
      text = json({ jsonrpc: '2.0', id: int(1, 999), result: { content: [{ type: 'text', text: 'ok' }], structuredContent: { record: { name, [key]: PH, note: f.lorem.words(4) } } } });
      break;
    case 3: // application log line
      text = `${f.date.recent().toISOString()} ${pick(['INFO', 'DEBUG', 'WARN'])} ${f.hacker.noun()}-svc[${int(100, 99999)}]: ${pick(['updated', 'loaded', 'synced'])} profile user=${f.internet.username()} ${key}=${PH} dur=${int(1, 900)}ms\n`;
      break;
    case 4: // prose (an email or chat message)
      text = `Hello ${f.person.firstName()},\n\n${f.lorem.sentence()} As requested, the ${phrase} on file is ${PH} — ${f.lorem.sentence()}\n\nBest regards,\n${name}\n`;
      break;
    case 5: // CSV export
      text = `name,city,${key},created\n"${name}",${city},${PH},${f.date.past().toISOString().slice(0, 10)}\n`;
      break;
    default: // env / YAML config
      text = pick([`# ${f.company.catchPhrase()}\n${key.toUpperCase()}=${PH}\nLOG_LEVEL=info\n`, `service:\n  name: ${f.hacker.noun()}\n  ${key}: ${PH}\n  replicas: ${int(1, 9)}\n`]);
  }
  let v = val;
  if (kind === 'json') {
    if (asNum) {
      text = text.replace(JSON.stringify(PH), PH);
    } else {
      v = JSON.stringify(val).slice(1, -1);
    }
  }
  const at = text.indexOf(kind === 'json' && !asNum ? JSON.stringify(PH).slice(1, -1) : PH);
  const phLen = kind === 'json' && !asNum ? JSON.stringify(PH).length - 2 : PH.length;
  text = text.slice(0, at) + v + text.slice(at + phLen);
  return { kind, text, s: enc(text.slice(0, at)), e: enc(text.slice(0, at)) + enc(v) };
}

// a URL password lives inside its URL: the label is the password
function wrapURL(scheme) {
  const pre = `${scheme}://${f.internet.username().replace(/[^a-z0-9_]/gi, '')}:`;
  return { pre, post: `@${f.internet.domainName()}:${int(1024, 9999)}/${f.lorem.word()}` };
}

const stat = {};
const out = [];
const emit = (o) => out.push(JSON.stringify(o));
for (const t of T) {
  const n = N * (t.mult || 1);
  let pos = 0, near = 0, guard = 0;
  while ((pos < n || near < n) && guard++ < n * 40) {
    const [src, gen] = t.sources[guard % t.sources.length];
    const st1 = (stat[t.det + ' ' + src] ??= { generated: 0, valid: 0, rejected: 0, unlabelled: 0 });
    let val;
    try { val = gen(); } catch (e) { st1.error = String(e.message).slice(0, 80); continue; }
    st1.generated++;
    const o = t.oracle ? t.oracle(val) : { ok: true };
    if (o.ok === null) { st1.unlabelled++; continue; }
    const det = o.det || t.det;
    const ctx = pick(t.ctx);
    const asNum = t.num && /^\d+$/.test(val) && int(0, 4) === 0 && !val.startsWith('0');
    if (!o.ok) {
      st1.rejected++;
      // a generator's output the oracle rejects is a natural near miss (random look-alikes)
      if (near < n && !t.nearOracle && t.oracle && ['btc-address', 'btc-bech32-address', 'ltc-address', 'iban', 'card'].includes(t.det)) {
        const d = lay(t, ctx, val, false);
        emit({ kind: d.kind, text: d.text, near: [{ det: t.det === 'card' ? 'card' : t.det, s: d.s, e: d.e, src: src + ' (rejected by oracle)' }] });
        near++;
      }
      continue;
    }
    st1.valid++;
    if (pos < n) {
      let d;
      if (t.wrap) {
        const { pre, post } = t.wrap();
        d = lay(t, ctx, pre + val + post, false);
        const preB = enc(JSON.stringify(pre).slice(1, -1));
        d.s += d.kind === 'json' ? preB : enc(pre);
        d.e = d.s + enc(val);
      } else {
        d = lay(t, ctx, val, asNum);
      }
      emit({ kind: d.kind, text: d.text, labels: [{ det, s: d.s, e: d.e, src }] });
      pos++;
    }
    if (near < n && t.near) {
      const m = t.near(val);
      const bad = m && m !== val && (t.nearOracle ? t.nearOracle(m) : t.oracle ? t.oracle(m).ok === false : true);
      if (bad) {
        const d = lay(t, ctx, m, false);
        emit({ kind: d.kind, text: d.text, near: [{ det, s: d.s, e: d.e, src: src + ' (mutated)' }] });
        near++;
      }
    } else if (!t.near) near = n;
  }
}

// ---- clean, realistic documents (nothing sensitive): anything reported is a false positive
for (let i = 0; i < N * 10; i++) {
  switch (i % 6) {
    case 0:
      emit({ kind: 'json', clean: true, text: JSON.stringify({ sha: f.git.commitSha(), parents: [{ sha: f.git.commitSha() }], commit: { message: f.git.commitMessage(), tree: { sha: f.git.commitSha() } }, stats: { additions: int(0, 900), deletions: int(0, 900) } }) });
      break;
    case 1:
      emit({ kind: 'json', clean: true, text: JSON.stringify({ devices: f.helpers.multiple(() => ({ imei: f.phone.imei(), model: f.commerce.productName(), serial: f.string.alphanumeric({ length: 12, casing: 'upper' }), fw: f.system.semver(), vin: f.vehicle.vin() }), { count: 3 }) }) });
      break;
    case 2:
      emit({ kind: 'json', clean: true, text: JSON.stringify({ order: { id: f.string.uuid(), number: f.number.int({ min: 1e9, max: 1e13 }), isbn: f.commerce.isbn(13), total: f.finance.amount(), created: f.date.recent().getTime(), lat: f.location.latitude(), lon: f.location.longitude(), ulid: f.string.ulid(), nanoid: f.string.nanoid(), mongo: f.database.mongodbObjectId() } }) });
      break;
    case 3:
      emit({ kind: 'text', clean: true, text: `${f.date.recent().toISOString()} ${pick(['INFO', 'WARN'])} [${f.system.fileName()}] request ${f.string.uuid()} took ${f.number.float({ min: 0, max: 9999, fractionDigits: 3 })}ms status=${f.internet.httpStatusCode()} bytes=${int(0, 1e9)} trace=${f.string.hexadecimal({ length: 32, prefix: '', casing: 'lower' })} flight=${f.airline.flightNumber({ addLeadingZeros: true })} pnr=${f.airline.recordLocator()}\n` });
      break;
    case 4:
      emit({ kind: 'text', clean: true, text: `${f.lorem.paragraph()} Version ${f.system.semver()} ships build ${f.number.int({ min: 1e11, max: 1e16 })} (${f.commerce.isbn(10)}); see ${f.system.filePath()} and ${f.string.hexadecimal({ length: 64, prefix: '', casing: 'lower' })}.\n` });
      break;
    default:
      emit({ kind: 'json', clean: true, text: JSON.stringify({ metrics: f.helpers.multiple(() => ({ name: f.hacker.noun(), value: f.number.float({ min: -1e6, max: 1e12, fractionDigits: 4 }), ts: f.date.recent().getTime() * 1000 + int(0, 999), big: f.number.bigInt({ min: 10n ** 14n, max: 10n ** 19n }).toString() }), { count: 4 }) }) });
  }
}
process.stdout.write(out.join('\n') + '\n');
process.stdout.write(JSON.stringify({ stat }) + '\n');
