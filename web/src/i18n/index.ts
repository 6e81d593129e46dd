// Turkish by default, English on request; the choice is kept in localStorage.
import i18n from "i18next";
import { initReactI18next } from "react-i18next";

import { en } from "./en";
import { tr } from "./tr";

export const LANGUAGES = ["tr", "en"] as const;
export type Language = (typeof LANGUAGES)[number];
const KEY = "logmaster.lang";

function initial(): Language {
  try {
    const saved = localStorage.getItem(KEY);
    if (saved === "en" || saved === "tr") return saved;
  } catch {
    /* storage disabled */
  }
  return "tr";
}

void i18n.use(initReactI18next).init({
  resources: { tr: { translation: tr }, en: { translation: en } },
  lng: initial(),
  fallbackLng: "tr",
  interpolation: { escapeValue: false }, // React escapes; text never becomes HTML
  returnNull: false,
});
document.documentElement.lang = i18n.language;

export function setLanguage(lang: Language): void {
  void i18n.changeLanguage(lang);
  document.documentElement.lang = lang;
  try {
    localStorage.setItem(KEY, lang);
  } catch {
    /* storage disabled */
  }
}

export default i18n;
